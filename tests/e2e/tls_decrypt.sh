#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 4: every TLS session captured live decrypts from the pcapng alone (no keylog given to tshark).
# Servers (openssl s_server, python ssl) in a namespace; clients (curl TLS 1.2/1.3 with several
# ciphers, python urllib, openssl s_client, 20 parallel curls) on the host; capture on the veth,
# started before the servers.
TAG=tls
source "$(dirname "$0")/lib.sh"
setup_veth 41
make_cert
OUT=$WORK/out.pcapng
CLIENT_KEYS=$WORK/client_keys.log
export SSLKEYLOGFILE=$CLIENT_KEYS

start_ehp "$WORK/ehp.log" tls -m pcap -i "$HV" -w "$OUT" tcp || exit 1
start_s_server 4433 || { echo "s_server failed"; exit 1; }
start_py_https 8443 || { echo "python https failed"; exit 1; }

URIS=()
get() {  # get NAME curl-args...
  local name=$1; shift
  URIS+=("/$name")
  curl -sk --max-time 10 -o /dev/null "$@" "https://$PEER_IP:8443/$name" || echo "curl $name failed"
}
get tls12 --tlsv1.2 --tls-max 1.2
get tls12-aes256 --tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-AES256-GCM-SHA384
get tls12-chacha --tlsv1.2 --tls-max 1.2 --ciphers ECDHE-ECDSA-CHACHA20-POLY1305
get tls13-aes128 --tlsv1.3 --tls13-ciphers TLS_AES_128_GCM_SHA256
get tls13-aes256 --tlsv1.3 --tls13-ciphers TLS_AES_256_GCM_SHA384
get tls13-chacha --tlsv1.3 --tls13-ciphers TLS_CHACHA20_POLY1305_SHA256
URIS+=("/sserver-curl")
curl -sk --max-time 10 -o /dev/null "https://$PEER_IP:4433/sserver-curl" || echo "curl s_server failed"
URIS+=("/python-urllib")
python3 - "$PEER_IP" <<'PY' || echo "urllib failed"
import ssl, sys, urllib.request
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
urllib.request.urlopen(f"https://{sys.argv[1]}:8443/python-urllib", context=ctx, timeout=10).read()
PY
URIS+=("/s_client")
printf 'GET /s_client HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -quiet -connect "$PEER_IP:8443" \
  -keylogfile "$WORK/s_client_keys.log" >"$WORK/s_client.out" 2>&1
grep -q "hello /s_client" "$WORK/s_client.out" || echo "s_client got no answer"
for i in $(seq 1 20); do
  URIS+=("/par$i")
  curl -sk --max-time 15 -o /dev/null "https://$PEER_IP:8443/par$i" &
done
wait_jobs() { for j in $(jobs -p); do [[ " ${BG_PIDS[*]} " == *" $j "* ]] || wait "$j"; done; }
wait_jobs
sleep 0.5   # let the last FIN/ACKs pass TC before stopping
stop_ehp
check "ecapture-hp exits 0 on SIGINT" test "$EHP_RC" -eq 0
check "output is mode 0600" test "$(stat -c %a "$OUT")" = 600
check "tshark reads the file" tshark -r "$OUT" -q
check "tcpdump reads the file" bash -c "tcpdump -r '$OUT' -c 1 >/dev/null 2>&1"
tshark -r "$OUT" -Y http.request -T fields -e http.request.uri 2>/dev/null | sort -u >"$WORK/seen.txt"
missing=0
for u in "${URIS[@]}"; do grep -qxF "$u" "$WORK/seen.txt" || { echo "  not decrypted: $u"; missing=$((missing+1)); }; done
check "every request (${#URIS[@]}) decrypts from the file alone" test "$missing" -eq 0
# s_server -www answers HTTP/1.0 without Content-Length, which tshark only shows as decrypted TLS
# segment data (it waits for a FIN to end the body); check its plaintext directly.
nresp=$(tshark -r "$OUT" -Y "http.response && tcp.srcport==8443" -T fields -e frame.number 2>/dev/null | wc -l)
check "every python-server response decrypts (${nresp} >= $(( ${#URIS[@]} - 1 )))" test "$nresp" -ge $(( ${#URIS[@]} - 1 ))
sserver_plain() { tshark -r "$OUT" -Y "tcp.srcport==4433" -T fields -e tls.segment.data 2>/dev/null | python3 -c 'import sys; print(bytes.fromhex("".join(sys.stdin.read().split())).decode(errors="replace"))' | grep -q "HTTP/1.0 200 ok"; }
check "s_server's response decrypts" sserver_plain
ndsb=$(tshark -X read_format:"MIME Files Format" -r "$OUT" -V 2>/dev/null | grep -c "Decryption Secrets Block" || true)
check "one DSB per session at least (${ndsb})" test "$ndsb" -ge "${#URIS[@]}"
grep -E "Packets received|written" "$WORK/ehp.log"
finish
