#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Hold-back end to end (root): real TLS 1.2 and 1.3 sessions (openssl s_server -www and
# s_client -keylogfile) in a private network namespace, captured on its loopback by dumpcap.
# The capture is replayed through HoldBack with every session's secrets delivered LATE (after its
# ServerHello and some application data), and the output must decrypt with plain
# `tshark -r out.pcapng -Y http` -- no key log given to tshark. The same replay writing the keys
# when they arrive (no hold-back) must NOT decrypt, which shows the test can fail.
#
#   holdback_e2e.sh path/to/holdback_replay
set -u
REPLAY=${1:?usage: holdback_e2e.sh holdback_replay}
NS=p7-hb-$$
WORK=$(mktemp -d /tmp/p7-hb.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  [[ ${KEEP:-0} == 1 ]] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
FAIL=0
check() {  # check "what" command...
  local what=$1; shift
  if "$@"; then echo "PASS: $what"; else echo "FAIL: $what"; FAIL=1; fi
}
wait_for() {  # polls a condition for up to 20 s
  local deadline=$((SECONDS + 20))
  while ((SECONDS < deadline)); do "$@" && return 0; sleep 0.05; done
  return 1
}
for tool in dumpcap tshark tcpdump openssl ip ss; do
  command -v $tool >/dev/null || { echo "missing $tool"; exit 1; }
done

ip netns add "$NS" || exit 1
ip -n "$NS" link set lo up
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=p7 \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null || exit 1

# Capture first, then the server: dumpcap reports "Capturing on" once the socket is live.
ip netns exec "$NS" dumpcap -i lo -f "tcp port 443" -w "$WORK/raw.pcapng" >"$WORK/dumpcap.log" 2>&1 &
DUMPCAP=$!
PIDS+=($DUMPCAP)
wait_for grep -qs "Capturing on" "$WORK/dumpcap.log" || { echo "dumpcap did not start"; cat "$WORK/dumpcap.log"; exit 1; }
ip netns exec "$NS" openssl s_server -accept 443 -cert "$WORK/cert.pem" -key "$WORK/key.pem" -www -quiet \
  >"$WORK/s_server.log" 2>&1 &
PIDS+=($!)
listening() { ip netns exec "$NS" ss -Hltn "sport = :443" | grep -q LISTEN; }
wait_for listening || { echo "s_server did not listen"; exit 1; }

# One session per (version, cipher); two run at once so their packets interleave.
SESSIONS=(
  "-tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256"
  "-tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384"
  "-tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256"
  "-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256"
  "-tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384"
  "-tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305"
)
# Then 14 more at once (TLS 1.3 and 1.2 alternating): 20 sessions in all, heavily interleaved.
for ((k = 0; k < 14; k++)); do
  if ((k % 2)); then SESSIONS+=("-tls1_2"); else SESSIONS+=("-tls1_3"); fi
done
N=${#SESSIONS[@]}
client() {  # client INDEX
  local i=$1
  printf 'GET /p7-req-%d HTTP/1.0\r\n\r\n' "$i" |
    timeout 15 ip netns exec "$NS" openssl s_client -connect 127.0.0.1:443 ${SESSIONS[$i]} \
      -keylogfile "$WORK/keys.$i" -quiet >"$WORK/client.$i.out" 2>"$WORK/client.$i.err"
}
for ((i = 0; i < 6; i += 2)); do
  client $i & c1=$!
  client $((i + 1)) & c2=$!
  wait $c1 $c2
done
CPIDS=()
for ((i = 6; i < N; i++)); do client $i & CPIDS+=($!); done
wait "${CPIDS[@]}"
for ((i = 0; i < N; i++)); do
  grep -q "HTTP/1.0 200" "$WORK/client.$i.out" || { echo "client $i got no response"; cat "$WORK/client.$i.err"; exit 1; }
done
# Every session's FIN must be in the capture before dumpcap stops: wait for the client-side FINs.
fins() { (( $(tshark -r "$WORK/raw.pcapng" -Y 'tcp.flags.fin==1 && tcp.dstport==443' 2>/dev/null | wc -l) >= N )); }
wait_for fins || echo "note: not every FIN seen in raw.pcapng yet"
kill -INT $DUMPCAP; wait $DUMPCAP

KEYS=()
for ((i = 0; i < N; i++)); do KEYS+=("$WORK/keys.$i"); done
cat "${KEYS[@]}" >"$WORK/all.keys"
requests() {  # requests FILE [tshark options...] -> the /p7-req-N URIs tshark decrypts, sorted
  local f=$1; shift
  tshark -r "$f" "$@" -Y 'http.request' -T fields -e http.request.uri 2>/dev/null | sort -u
}
expected=$(for ((i = 0; i < N; i++)); do echo "/p7-req-$i"; done | sort -u)

# The set-up itself is sound: with the key log file given to tshark, the raw capture decrypts.
check "raw capture decrypts with -o tls.keylog_file (set-up sanity)" \
  test "$(requests "$WORK/raw.pcapng" -o "tls.keylog_file:$WORK/all.keys")" == "$expected"
check "raw capture alone does not decrypt" test -z "$(requests "$WORK/raw.pcapng")"

"$REPLAY" --mode hold --out "$WORK/out.pcapng" "$WORK/raw.pcapng" "${KEYS[@]}" | tee "$WORK/hold.txt"
check "replay with hold-back succeeded" test "${PIPESTATUS[0]}" -eq 0
"$REPLAY" --mode direct --out "$WORK/direct.pcapng" "$WORK/raw.pcapng" "${KEYS[@]}" | tee "$WORK/direct.txt"
check "replay without hold-back succeeded" test "${PIPESTATUS[0]}" -eq 0

check "all $N keys were delivered late (after the request), each released its held session" \
  grep -q "late_keys=$N keyed=$N timeout=0 overflow=0 without_flow=0 (keys after request=$N " "$WORK/hold.txt"
got=$(requests "$WORK/out.pcapng")
echo "decrypted with hold-back: $(echo $got)"
check "hold-back output: tshark -Y http shows every request, no key log given" test "$got" == "$expected"
# s_server -www answers HTTP/1.0 without Content-Length: let tshark show the header without
# waiting for the body to end (a display option; still no key log).
resp=$(tshark -r "$WORK/out.pcapng" -o http.desegment_body:FALSE -Y 'http.response.code == 200' 2>/dev/null | wc -l)
check "hold-back output: every response decrypts too ($resp/$N)" test "$resp" -eq "$N"
# Readers disagree on what is malformed (docs/facts.md): both must accept the file.
reads_tcpdump() { tcpdump -r "$1" -nn -q >/dev/null 2>"$WORK/tcpdump.err" && ! grep -qi "truncated\|bogus\|invalid" "$WORK/tcpdump.err"; }
reads_tshark() { tshark -r "$1" -V >/dev/null 2>"$WORK/tshark.err" && ! grep -qi "malformed\|appears to be damaged\|cut short" "$WORK/tshark.err"; }
check "hold-back output reads cleanly with tcpdump" reads_tcpdump "$WORK/out.pcapng"
check "hold-back output reads cleanly with tshark -V" reads_tshark "$WORK/out.pcapng"
same=$(($(tshark -r "$WORK/raw.pcapng" 2>/dev/null | wc -l) == $(tshark -r "$WORK/out.pcapng" 2>/dev/null | wc -l)))
check "hold-back output has every captured packet" test "$same" -eq 1

# The same through the Correlator flow graph (batches, Secrets -> dedup -> derivation -> hold-back).
# Only TLS 1.2 sessions can be given as Secrets from a key log (see holdback_replay.cc); the TLS 1.3
# ones get no secrets and must come out through drain() as timeouts, undecrypted but complete.
"$REPLAY" --mode graph --out "$WORK/graph.pcapng" "$WORK/raw.pcapng" "${KEYS[@]}" | tee "$WORK/graph.txt"
check "replay through the flow graph succeeded" test "${PIPESTATUS[0]}" -eq 0
n12=$(grep -l CLIENT_RANDOM "${KEYS[@]}" | wc -l)
exp12=$(for f in $(grep -l CLIENT_RANDOM "${KEYS[@]}"); do echo "/p7-req-${f##*.}"; done | sort -u)
check "flow graph: $n12 TLS 1.2 sessions keyed late, duplicates dropped, TLS 1.3 ones timed out" \
  grep -q "late_keys=$n12 keyed=$n12 timeout=$((N - n12)) overflow=0 without_flow=0" "$WORK/graph.txt"
check "flow graph: every duplicate secrets event dropped by dedup" grep -q "secrets=$((2 * n12)) duplicates=$n12 null=0 derived=$n12" "$WORK/graph.txt"
gotg=$(requests "$WORK/graph.pcapng")
echo "decrypted through the flow graph: $(echo $gotg)"
check "flow graph output: every TLS 1.2 request decrypts, no key log given" test "$gotg" == "$exp12"
check "flow graph output has every captured packet" \
  test "$(tshark -r "$WORK/graph.pcapng" 2>/dev/null | wc -l)" -eq "$(tshark -r "$WORK/raw.pcapng" 2>/dev/null | wc -l)"

nohold=$(requests "$WORK/direct.pcapng")
echo "decrypted without hold-back: $(echo $nohold)"
check "without hold-back the late keys decrypt nothing" test -z "$nohold"

exit $FAIL
