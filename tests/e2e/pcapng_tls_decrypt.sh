#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# e2e (root): a real TLS 1.3 (or 1.2) HTTP request over loopback, captured by dumpcap, re-encoded by our
# pcapng encoders, must decrypt in tshark from the embedded DSB alone when the DSB precedes the
# ClientHello, and must NOT decrypt when the DSB comes after the packets (docs/facts.md, "Wireshark only decrypts
# with keys it has already read").
#   usage: pcapng_tls_decrypt.sh PATH/TO/pcapng_reencode [1.3|1.2]
set -euo pipefail
REENCODE=${1:?usage: $0 pcapng_reencode [1.3|1.2]}
TLSVER=${2:-1.3}
case $TLSVER in
  1.3) CURL_TLS=(--tlsv1.3); KEYLINE=CLIENT_HANDSHAKE_TRAFFIC_SECRET ;;
  1.2) CURL_TLS=(--tlsv1.2 --tls-max 1.2); KEYLINE=CLIENT_RANDOM ;;
  *) echo "FAIL: bad TLS version $TLSVER"; exit 1 ;;
esac
for t in openssl curl dumpcap tshark tcpdump capinfos ss; do
  command -v "$t" >/dev/null || { echo "FAIL: $t not on PATH"; exit 1; }
done

DIR=$(mktemp -d /tmp/p1-tls-e2e-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ -n "${P1_KEEP:-}" ]] && echo "kept $DIR" || rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Poll a condition (a command) every 50 ms for up to $1 seconds.
wait_for() {
  local limit=$(( $1 * 20 )); shift
  for ((i = 0; i < limit; i++)); do "$@" && return 0; sleep 0.05; done
  return 1
}

# A port nobody listens on, in a range unlikely to collide with other tests on the host.
PORT=""
for ((try = 0; try < 50; try++)); do
  cand=$(( 41000 + (RANDOM % 2000) ))
  if ! ss -Htan "( sport = :$cand or dport = :$cand )" | grep -q .; then PORT=$cand; break; fi
done
[[ -n $PORT ]] || fail "no free port"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -keyout "$DIR/key.pem" -out "$DIR/cert.pem" >/dev/null 2>&1 || fail "openssl req"

dumpcap -q -i lo -f "tcp port $PORT" -w "$DIR/raw.pcapng" 2>"$DIR/dumpcap.err" &
PIDS+=($!)
wait_for 10 grep -qs "Capturing on" "$DIR/dumpcap.err" || { cat "$DIR/dumpcap.err"; fail "dumpcap did not start"; }

openssl s_server -quiet -accept "$PORT" -cert "$DIR/cert.pem" -key "$DIR/key.pem" -www \
  >"$DIR/server.out" 2>&1 &
PIDS+=($!)
wait_for 10 bash -c "ss -Hltn '( sport = :$PORT )' | grep -q ." || fail "s_server did not listen on $PORT"

SSLKEYLOGFILE="$DIR/keys.log" curl -sk "${CURL_TLS[@]}" --max-time 10 -o "$DIR/body.html" \
  "https://127.0.0.1:$PORT/p1-e2e-path" || fail "curl failed"
grep -q "s_server" "$DIR/body.html" || fail "unexpected response body"
[[ -s "$DIR/keys.log" ]] || fail "curl wrote no key log"
grep -q "^$KEYLINE " "$DIR/keys.log" || fail "key log has no TLS $TLSVER secrets ($KEYLINE)"

# The connection is done once both sides' FIN (or a RST) are in the file dumpcap flushes.
closed() {
  local n
  n=$(tshark -r "$DIR/raw.pcapng" -Y 'tcp.flags.fin == 1 || tcp.flags.reset == 1' -T fields -e frame.number 2>/dev/null | wc -l)
  (( n >= 2 ))
}
wait_for 20 closed || fail "dumpcap never wrote the connection's end"
kill -INT "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true

# Control: the raw capture really holds an HTTP request that the key log decrypts.
tshark -r "$DIR/raw.pcapng" -o "tls.keylog_file:$DIR/keys.log" -Y http -T fields -e http.request.uri 2>/dev/null \
  | grep -qx /p1-e2e-path || fail "control: raw capture + key log file does not decrypt"

"$REENCODE" "$DIR/raw.pcapng" "$DIR/keys.log" "$DIR/before.pcapng" before >"$DIR/before.txt" || fail "reencode before"
"$REENCODE" "$DIR/raw.pcapng" "$DIR/keys.log" "$DIR/after.pcapng" after >"$DIR/after.txt" || fail "reencode after"
cat "$DIR/before.txt"
grep -q 'clienthello=[1-9]' "$DIR/before.txt" || fail "no ClientHello found in the capture"

# Same packet count as dumpcap's file.
raw_n=$(tshark -r "$DIR/raw.pcapng" -T fields -e frame.number 2>/dev/null | wc -l)
new_n=$(tshark -r "$DIR/before.pcapng" -T fields -e frame.number 2>/dev/null | wc -l)
[[ $raw_n -eq $new_n && $raw_n -gt 0 ]] || fail "packet count $new_n != dumpcap's $raw_n"

# Both readers accept the re-encoded files cleanly.
for f in before after; do
  tshark -r "$DIR/$f.pcapng" -V >"$DIR/$f.V" 2>"$DIR/$f.tshark.err" || fail "tshark -V $f exit $?"
  if grep -v 'Running as user "root"' "$DIR/$f.tshark.err" | grep -q .; then
    cat "$DIR/$f.tshark.err"; fail "tshark stderr on $f"
  fi
  grep -q Malformed "$DIR/$f.V" && fail "tshark shows a malformed packet in $f"
  tcpdump -nn -r "$DIR/$f.pcapng" >"$DIR/$f.tcpdump" 2>"$DIR/$f.tcpdump.err" || { cat "$DIR/$f.tcpdump.err"; fail "tcpdump $f"; }
  if grep -v '^reading from file ' "$DIR/$f.tcpdump.err" | grep -q .; then
    cat "$DIR/$f.tcpdump.err"; fail "tcpdump stderr on $f"
  fi
  [[ $(wc -l <"$DIR/$f.tcpdump") -eq $raw_n ]] || fail "tcpdump saw a different packet count in $f"
  capinfos "$DIR/$f.pcapng" | grep -q "Number of decryption secrets in file: 1" || fail "capinfos: no DSB in $f"
done

# DSB before the ClientHello: tshark decrypts from the file alone (no -o tls.keylog_file).
got=$(tshark -r "$DIR/before.pcapng" -Y http -T fields -e http.request.method -e http.request.uri 2>/dev/null)
echo "before: $got"
grep -qx $'GET\t/p1-e2e-path' <<<"$got" || fail "DSB before ClientHello: HTTP request not decrypted"
# s_server -www answers HTTP/1.0 without a length (ends at close), so check the decrypted stream.
tshark -r "$DIR/before.pcapng" -q -z follow,tls,ascii,0 >"$DIR/before.follow" 2>/dev/null
grep -q '^HTTP/1.0 200 ok' "$DIR/before.follow" || fail "server response not decrypted"
grep -q 'Ciphers supported in s_server' "$DIR/before.follow" || fail "response body not decrypted"

# DSB after the packets: nothing decrypts, not even with two passes.
got=$(tshark -r "$DIR/after.pcapng" -Y http 2>/dev/null)
[[ -z $got ]] || { echo "$got"; fail "DSB after the packets decrypted (docs/facts.md says it cannot)"; }
got=$(tshark -2 -r "$DIR/after.pcapng" -Y http 2>/dev/null)
[[ -z $got ]] || { echo "$got"; fail "DSB after the packets decrypted with -2"; }
tshark -r "$DIR/after.pcapng" -q -z follow,tls,ascii,0 2>/dev/null | grep -q 'HTTP/1' \
  && fail "DSB after the packets: TLS stream decrypted"
# ...although the same keys are in it (control).
tshark -r "$DIR/after.pcapng" -o "tls.keylog_file:$DIR/keys.log" -Y http 2>/dev/null | grep -q . \
  || fail "control: after.pcapng does not decrypt even with the key log file"

echo "PASS (TLS $TLSVER): DSB before the ClientHello decrypts; after the packets it does not"
