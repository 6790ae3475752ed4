# SPDX-License-Identifier: BSD-2-Clause
# Shared helpers for the end-to-end tests of the ecapture-hp binary. Source it; set TAG first
# (a short unique name: namespaces, veths and temp dirs are named after it).
set -u
EHP=${EHP:?set EHP to the ecapture-hp binary}
: "${TAG:?}"
NS=ehp-$TAG
HV=eh-$TAG-h          # host side of the veth
NV=eh-$TAG-n          # namespace side
WORK=$(mktemp -d /tmp/ehp-$TAG.XXXXXX)
PASS=0
FAIL=0
BG_PIDS=()

cleanup() {
  for p in "${BG_PIDS[@]:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  ip link del "$HV" 2>/dev/null
  [[ ${KEEP:-0} == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT

# setup_veth SUBNET_OCTET: host 10.213.X.1 <-> namespace 10.213.X.2 (+ fd13:X::1/2)
setup_veth() {
  local x=$1
  ip netns del "$NS" 2>/dev/null; ip link del "$HV" 2>/dev/null
  ip netns add "$NS"
  ip link add "$HV" type veth peer name "$NV"
  ip link set "$NV" netns "$NS"
  ip addr add 10.213.$x.1/24 dev "$HV"
  ip -6 addr add fd13:$x::1/64 dev "$HV" nodad
  ip link set "$HV" up
  ip -n "$NS" addr add 10.213.$x.2/24 dev "$NV"
  ip -n "$NS" -6 addr add fd13:$x::2/64 dev "$NV" nodad
  ip -n "$NS" link set "$NV" up
  ip -n "$NS" link set lo up
  HOST_IP=10.213.$x.1
  PEER_IP=10.213.$x.2
  PEER_IP6=fd13:$x::2
}

check() {  # check "description" command...
  local desc=$1; shift
  if "$@"; then echo "PASS: $desc"; PASS=$((PASS+1)); else echo "FAIL: $desc"; FAIL=$((FAIL+1)); fi
}

# wait_for CMD... : polls a condition for up to WAIT_S seconds (default 20)
wait_for() {
  local deadline=$((SECONDS + ${WAIT_S:-20}))
  while ((SECONDS < deadline)); do "$@" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# start_ehp LOG ARGS... : runs ecapture-hp in the background, waits for its ready line
start_ehp() {
  local log=$1; shift
  : >"$log"  # now: the background shell truncates it later, and a reused log's old ready line would match
  "$EHP" "$@" 2>"$log" &
  EHP_PID=$!
  BG_PIDS+=("$EHP_PID")
  if ! wait_for grep -q "capturing" "$log"; then
    echo "ecapture-hp did not start:"; cat "$log"; return 1
  fi
}

stop_ehp() {  # SIGINT, then wait for exit; sets EHP_RC
  kill -INT "$EHP_PID" 2>/dev/null
  wait "$EHP_PID"; EHP_RC=$?
}

make_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=ehp-test -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
}

# A threaded HTTPS server in the namespace (python ssl) on PORT. With DELAY_PATH and DELAY_S in
# the environment, the answer to that path comes DELAY_S seconds late (a client parked in a read).
start_py_https() {
  local port=$1
  cat >"$WORK/https.py" <<'PY'
import http.server, os, ssl, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == os.environ.get("DELAY_PATH"):
            time.sleep(float(os.environ.get("DELAY_S", "0")))
        body = ("hello " + self.path + "\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain"); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[3], sys.argv[4])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
PY
  ip netns exec "$NS" python3 "$WORK/https.py" 0.0.0.0 "$port" "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/py.$port.log" 2>&1 &
  BG_PIDS+=($!)
  wait_for grep -q ready "$WORK/py.$port.log"
}

start_s_server() {  # openssl s_server -www on PORT in the namespace
  local port=$1
  ip netns exec "$NS" openssl s_server -accept "$port" -cert "$WORK/cert.pem" -key "$WORK/key.pem" \
    -www -quiet >"$WORK/s_server.$port.log" 2>&1 &
  BG_PIDS+=($!)
  wait_for ns_listening "$port"
}

# start_gnutls_serv PORT: gnutls-serv --http in the namespace, a TLS server whose library is
# not traced (every key must come from the client's stack). make_cert first.
start_gnutls_serv() {
  local port=$1
  ip netns exec "$NS" gnutls-serv --http --x509certfile "$WORK/cert.pem" --x509keyfile "$WORK/key.pem" \
    -p "$port" >"$WORK/gnutls.$port.log" 2>&1 &
  BG_PIDS+=($!)
  wait_for ns_listening "$port"
}

# check_three_sessions LABEL FILE: the TLS 1.3 / 1.2 / 1.3 client runs of tls_node.sh and
# tls_boringssl.sh: every request decrypts from FILE alone, and one session is TLS 1.2.
check_three_sessions() {
  local label=$1 f=$2 reqs sh_all sh_13
  reqs=$(tshark -r "$f" -Y http.request 2>/dev/null | wc -l)
  check "$label: all 3 requests decrypt from the file alone ($reqs)" test "$reqs" -eq 3
  sh_all=$(tshark -r "$f" -Y 'tls.handshake.type == 2' 2>/dev/null | wc -l)
  sh_13=$(tshark -r "$f" -Y 'tls.handshake.type == 2 && tls.handshake.extensions.supported_version == 0x0304' 2>/dev/null | wc -l)
  check "$label: 3 sessions, one of them TLS 1.2 ($sh_all ServerHellos, $sh_13 TLS 1.3)" test "$sh_all" -eq 3 -a "$sh_13" -eq 2
}

ns_listening() { ip netns exec "$NS" ss -Hltn "sport = :$1" 2>/dev/null | grep -q LISTEN; }

finish() {
  echo "$PASS passed, $FAIL failed"
  ((FAIL == 0))
}
