#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# e2e for engine/tlsprobe (root).
# Usage: tlsprobe_e2e.sh TOOL keylog|keylog_fallback|filter|text|refuse [FAKE_LIBSSL]
#   keylog: s_server on loopback; curl TLS1.2 + TLS1.3 (3 suites), python urllib, s_client, all
#           started after the probe; the probe's keylog lines equal the clients' own key log
#           lines (per client_random, every label and value) and carry the client's pid/comm;
#           the server side (s_server -www drives TLS through the ssl BIO) is seen too.
#           keylog: handshake_func hooks; keylog_fallback: SSL_do_handshake + per-call hooks.
#   filter: a probe with -p <pid of one client> sees that client and nobody else; a probe with
#           -u 65534 sees curl run as nobody and not curl run as root.
#   text:   -m text shows "GET / HTTP/1.1" written by curl with curl's pid/comm, the reply it
#           read, and s_client's request with its connection tuple.
#   refuse: a fake vendor libssl (drifted offsets) is refused with one line naming it.
set -euo pipefail
TOOL=$1
MODE=$2
FAKE=${3:-}
T=$(mktemp -d /tmp/p6.tlsprobe.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/*.log "$T"/probe*.out; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; } >&2; done; exit 1; }

wait_for() {  # wait_for SECONDS CMD...: poll a condition, not a sleep-as-synchronisation
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.05
  done
}

start_probe() {  # start_probe NAME ARGS...
  local name=$1; shift
  "$TOOL" "$@" --out "$T/$name.out" --ready "$T/$name.ready" 2>"$T/$name.log" &
  PIDS+=($!)
  eval "${name}_PID=$!"
  wait_for 30 test -s "$T/$name.ready" || fail "$name did not start"
  grep -q '^attached .*libssl' "$T/$name.ready" || fail "$name attached nothing: $(cat "$T/$name.ready")"
}

stop_probe() {  # stop_probe NAME: SIGTERM, wait for its final stats line
  local name=$1 pid
  eval "pid=\$${name}_PID"
  kill -TERM "$pid"
  wait "$pid" || fail "$name exited with $?"
  grep -q '^S ' "$T/$name.out" || fail "$name wrote no stats line"
}

if [ "$MODE" = refuse ]; then
  set +e
  "$TOOL" --libssl "$FAKE" --out "$T/x.out" --ready "$T/x.ready" 2>"$T/err.txt"
  rc=$?
  set -e
  [ $rc -eq 2 ] || fail "expected exit 2, got $rc"
  [ "$(wc -l <"$T/err.txt")" -eq 1 ] || fail "error is not one line: $(cat "$T/err.txt")"
  grep -q "$FAKE" "$T/err.txt" || fail "error does not name the library: $(cat "$T/err.txt")"
  grep -q 'OpenSSL 3.0.12' "$T/err.txt" || fail "error does not name the version: $(cat "$T/err.txt")"
  grep -q 'not confirmed' "$T/err.txt" || fail "error does not say why: $(cat "$T/err.txt")"
  [ ! -e "$T/x.ready" ] || fail "probe started on a refused library"
  echo "refused: $(cat "$T/err.txt")"
  exit 0
fi

# Throwaway server certificate and the server.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$T/key.pem" \
  -out "$T/cert.pem" -subj /CN=localhost -days 1 2>/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="https://127.0.0.1:$PORT/"

case $MODE in
  keylog) start_probe probe ;;
  keylog_fallback) start_probe probe --fallback ;;
  text) start_probe probe --text ;;
esac

# The server starts after the probe too (covered as a "process started later" as well).
openssl s_server -accept "127.0.0.1:$PORT" -cert "$T/cert.pem" -key "$T/key.pem" -www -quiet \
  >"$T/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=($SERVER_PID)
wait_for 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null || fail "s_server not listening"

CLIENTS=()  # "pid comm keylogfile"
run_curl() {  # run_curl NAME CURL-ARGS...
  local name=$1; shift
  SSLKEYLOGFILE="$T/$name.keys" curl -sk --http1.1 -o "$T/$name.body" "$@" "$URL" &
  local pid=$!
  wait $pid || fail "curl $name failed"
  grep -q 's_server' "$T/$name.body" || fail "curl $name: unexpected body"
  CLIENTS+=("$pid curl $T/$name.keys")
}
run_python() {
  local name=$1
  SSLKEYLOGFILE="$T/$name.keys" python3 - "$URL" "$T/$name.keys" <<'EOF' &
import ssl, sys, urllib.request
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.keylog_filename = sys.argv[2]  # also honoured via SSLKEYLOGFILE by create_default_context
body = urllib.request.urlopen(sys.argv[1], context=ctx, timeout=10).read()
assert b"s_server" in body, body[:200]
EOF
  local pid=$!
  wait $pid || fail "python $name failed"
  CLIENTS+=("$pid python3 $T/$name.keys")
}
run_s_client() {
  local name=$1
  printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -connect "127.0.0.1:$PORT" -keylogfile "$T/$name.keys" \
    -ign_eof -quiet >"$T/$name.body" 2>"$T/$name.log" &
  local pid=$!
  wait $pid || fail "s_client $name failed"
  grep -q 's_server' "$T/$name.body" || fail "s_client $name: unexpected body"
  CLIENTS+=("$pid openssl $T/$name.keys")
}

check_keylog() {  # every client's key log == the probe's lines for those client_randoms
  python3 - "$T/probe.out" "$SERVER_PID" "${CLIENTS[@]}" <<'EOF'
import sys, collections
probe_path, server_pid, clients = sys.argv[1], sys.argv[2], sys.argv[3:]
probe = collections.defaultdict(set)   # client_random -> {(label, secret)}
who = collections.defaultdict(set)     # client_random -> {(pid, comm)}
null = 0
for line in open(probe_path):
    f = line.split()
    if f[0] == "N": null += 1
    if f[0] != "K": continue
    pid, comm, label, cr, secret = f[1], f[4], f[5], f[6].lower(), f[7].lower()
    probe[cr].add((label, secret)); who[cr].add((pid, comm))
ok = True
seen = 0
for c in clients:
    pid, comm, path = c.split(" ", 2)
    want = collections.defaultdict(set)
    for line in open(path):
        f = line.split()
        if len(f) == 3 and not line.startswith("#"):
            want[f[1].lower()].add((f[0], f[2].lower()))
    if not want:
        print(f"FAIL {path}: client wrote no key log lines"); ok = False
    for cr, lines in want.items():
        seen += 1
        if probe.get(cr) != lines:
            print(f"FAIL {path} cr={cr[:16]}..: client {sorted(l for l,_ in lines)} probe {sorted(l for l,_ in probe.get(cr, set()))}")
            if probe.get(cr):
                print("  value mismatch:", lines ^ probe[cr])
            ok = False
        if (pid, comm) not in who.get(cr, set()):
            print(f"FAIL {path}: cr={cr[:16]}.. attributed to {who.get(cr)}, expected ({pid}, {comm})")
            ok = False
        if not any(p == server_pid for p, _ in who.get(cr, set())):
            print(f"FAIL {path}: server side (pid {server_pid}) of cr={cr[:16]}.. not seen")
            ok = False
print(f"{seen} sessions from {len(clients)} clients compared; probe null-key events: {null}")
sys.exit(0 if ok else 1)
EOF
}

case $MODE in
keylog | keylog_fallback)
  if [ "$MODE" = keylog ]; then
    grep -q 'hooks: handshake_func' "$T/probe.ready" || fail "primary hooks not used: $(cat "$T/probe.ready")"
  else
    grep -q 'hooks: SSL_do_handshake' "$T/probe.ready" || fail "fallback hooks not used: $(cat "$T/probe.ready")"
  fi
  run_curl c12 --tlsv1.2 --tls-max 1.2
  run_curl c13a --tlsv1.3 --tls13-ciphers TLS_AES_128_GCM_SHA256
  run_curl c13b --tlsv1.3 --tls13-ciphers TLS_AES_256_GCM_SHA384
  run_curl c13c --tlsv1.3 --tls13-ciphers TLS_CHACHA20_POLY1305_SHA256
  run_python py
  run_s_client sc
  # Wait for the probe to have delivered every client's sessions (condition, bounded).
  wait_for 20 check_keylog >/dev/null || true
  stop_probe probe
  check_keylog || fail "probe key log differs from the clients' key logs"
  grep '^S ' "$T/probe.out"
  ;;
filter)
  # A client that waits for a go signal, so its pid is known before it connects.
  mkfifo "$T/go"
  SSLKEYLOGFILE="$T/py.keys" python3 - "$URL" "$T/py.keys" "$T/go" <<'EOF' &
import ssl, sys, urllib.request
open(sys.argv[3]).read()
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ctx.keylog_filename = sys.argv[2]
assert b"s_server" in urllib.request.urlopen(sys.argv[1], context=ctx, timeout=10).read()
EOF
  PY=$!
  PIDS+=($PY)
  start_probe probe -p "$PY"
  run_curl other --tlsv1.3
  echo go >"$T/go"
  wait $PY || fail "filtered python client failed"
  CLIENTS=("$PY python3 $T/py.keys")
  wait_for 20 grep -q "^K $PY " "$T/probe.out" || fail "the -p $PY client was not captured"
  stop_probe probe
  awk -v p="$PY" '$1=="K" && $2!=p {bad=1; print "FAIL: pid " $2 " (" $5 ") leaked through -p " p} END {exit bad}' \
    "$T/probe.out" || fail "-p filter let other pids through"
  other_cr=$(awk '{print $2; exit}' "$T/other.keys")
  ! grep -qi "$other_cr" "$T/probe.out" || fail "curl's session seen despite -p $PY"
  # Only the client side: the server's pid is filtered out too.
  SERVER_PID=none
  python3 - "$T/probe.out" "$T/py.keys" <<'EOF' || fail "-p client's key log differs"
import sys
probe = {tuple(l.split()[5:8]) for l in open(sys.argv[1]) if l.startswith("K ")}
want = {tuple(l.split()) for l in open(sys.argv[2]) if len(l.split()) == 3}
sys.exit(0 if probe == want else (print("probe", probe, "want", want) or 1))
EOF
  echo "filter ok: only pid $PY captured"
  # -u: a probe for uid 65534 sees curl run as nobody and not curl run as root.
  start_probe probeu -u 65534
  setpriv --reuid 65534 --regid 65534 --clear-groups \
    curl -sk --http1.1 -o /dev/null "$URL" 2>/dev/null &
  NB=$!
  wait $NB || fail "curl as nobody failed"
  run_curl root --tlsv1.2 --tls-max 1.2
  wait_for 20 grep -q "^K $NB [0-9]* 65534 curl " "$T/probeu.out" || fail "-u 65534 did not capture curl run as nobody"
  stop_probe probeu
  awk '$1=="K" && $4!="65534" {bad=1; print "FAIL: uid " $4 " leaked through -u 65534"} END {exit bad}' \
    "$T/probeu.out" || fail "-u filter let other uids through"
  echo "filter ok: -u 65534 captured only uid 65534"
  ;;
text)
  SSLKEYLOGFILE="$T/t.keys" curl -sk --http1.1 -o "$T/t.body" "$URL" &
  CURL=$!
  wait $CURL || fail "curl failed"
  wait_for 20 grep -q "^D $CURL [0-9]* [0-9]* curl W [0-9]* [^ ]* GET / HTTP/1.1" "$T/probe.out" ||
    fail "request line from curl pid $CURL not in text output"
  wait_for 20 grep -q "^D $CURL [0-9]* [0-9]* curl R .*HTTP/1.0 200 ok" "$T/probe.out" ||
    fail "response not read by curl pid $CURL in text output"
  # curl uses its own BIO (no fd in rbio->num), so the tuple is checked on s_client, which
  # uses a socket BIO: local end = its ephemeral port, remote = the server port.
  printf 'GET /sc HTTP/1.1\r\nHost: x\r\n\r\n' | openssl s_client -connect "127.0.0.1:$PORT" -ign_eof -quiet \
    >"$T/sc.body" 2>"$T/sc.log" &
  SC=$!
  wait $SC || fail "s_client failed"
  wait_for 20 grep -q "^D $SC [0-9]* [0-9]* openssl W [0-9]* 127.0.0.1:[0-9]*->127.0.0.1:$PORT GET /sc HTTP/1.1" \
    "$T/probe.out" || fail "s_client's request line with its connection tuple not in text output"
  # One 40 KB SSL_write_ex: the record keeps the call's length, carries the first 16 KiB, and
  # the in-kernel truncation counter says so.
  python3 - "$PORT" <<'EOF' &
import socket, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="x") as s:
    s.sendall(b"GET /big HTTP/1.0\r\nX-Pad: " + b"a" * 40000 + b"\r\n\r\n")
    try:
        s.recv(100)
    except OSError:
        pass
EOF
  BIG=$!
  wait $BIG || true
  wait_for 20 grep -q "^D $BIG [0-9]* [0-9]* python3 W 40030 [^ ]* GET /big" "$T/probe.out" ||
    fail "40 KB write not recorded with its full length"
  stop_probe probe
  grep -q '^S .* truncated=[1-9]' "$T/probe.out" || fail "truncation not counted: $(grep '^S' "$T/probe.out")"
  grep "^D $BIG" "$T/probe.out" | awk '$6=="W" {exit !(length($0) < 16384 + 200)}' ||
    fail "truncated record carries more than 16 KiB"
  grep "^D $CURL" "$T/probe.out" | cut -c1-160
  ;;
esac
echo PASS
