#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# BoringSSL (Debian's android-libboringssl: libssl.so.0, stripped) traced through its own
# secret logger, found by reading the library (the one function that calls SSL_CTX's key log
# callback, its start from .eh_frame_hdr). A C client built against it talks to gnutls-serv,
# whose library is not traced, so every key comes from BoringSSL:
#  - found without flags: a process mapping libssl.so.0 runs when the capture starts; the
#    client is a new process;
#  - all 3 requests (TLS 1.3, 1.2, 1.3) decrypt from the pcapng alone;
#  - -m keylog writes exactly the lines the client's own key log callback wrote;
#  - server side: the same program serving gnutls-cli (TLS 1.3 and 1.2): both decrypt.
TAG=bssl
source "$(dirname "$0")/lib.sh"
setup_veth 139
LIBDIR=/usr/lib/x86_64-linux-gnu/android
command -v gnutls-serv >/dev/null || { echo "SKIP: gnutls-serv missing (apt-get install gnutls-bin)"; exit 77; }
[[ -f /usr/include/android/openssl/ssl.h && -f $LIBDIR/libssl.so.0 ]] ||
  { echo "SKIP: BoringSSL missing (apt-get install android-libboringssl-dev)"; exit 77; }
CLIENT=$WORK/bclient
gcc -O1 -I/usr/include/android "$(dirname "$0")/boringssl_client.c" -o "$CLIENT" -L"$LIBDIR" -lssl -lcrypto \
  -Wl,-rpath,"$LIBDIR" || { echo "FAIL: building the BoringSSL client"; exit 1; }

make_cert
PORT=19444
start_gnutls_serv "$PORT"

"$CLIENT" idle &
BG_PIDS+=($!)
sleep 0.3
start_ehp "$WORK/p.log" tls -m pcap -i "$HV" -w "$WORK/b.pcapng" tcp port "$PORT"
"$CLIENT" "$PEER_IP" "$PORT" "$WORK/own.keys"
crc=$?
sleep 0.5
stop_ehp
check "the client's 3 requests succeeded (rc=$crc)" test "$crc" -eq 0
check "traced without flags, named BoringSSL" grep -q "tracing $LIBDIR/libssl.so.0 (BoringSSL; the library's own secret logger" "$WORK/p.log"
check_three_sessions BoringSSL "$WORK/b.pcapng"
check "exit 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0

"$EHP" tls -m keylog --keylogfile "$WORK/ehp.keys" -q 2>"$WORK/k.log" &
KP=$!
BG_PIDS+=("$KP")
wait_for grep -q capturing "$WORK/k.log"
"$CLIENT" "$PEER_IP" "$PORT" "$WORK/own.keys"
sleep 0.5
kill -INT "$KP"; wait "$KP"
check "-m keylog lines == the client's own key log ($(wc -l <"$WORK/ehp.keys") vs $(wc -l <"$WORK/own.keys"))" \
  bash -c "[[ -s '$WORK/own.keys' ]] && diff <(sort '$WORK/ehp.keys') <(sort '$WORK/own.keys') >/dev/null"

# Server side: the same program as a BoringSSL HTTPS server in the namespace (started before the
# capture: found without flags), gnutls-cli clients (not traced), TLS 1.3 and TLS 1.2.
SPORT=19446
ip netns exec "$NS" "$CLIENT" serve "$SPORT" "$WORK/cert.pem" "$WORK/key.pem" "$WORK/srv.keys" 2 &
BG_PIDS+=($!)
wait_for ns_listening "$SPORT"
start_ehp "$WORK/s.log" tls -m pcap -i "$HV" -w "$WORK/srv.pcapng" tcp port "$SPORT"
for prio in NORMAL NORMAL:-VERS-TLS1.3; do
  printf 'GET /srv HTTP/1.0\r\n\r\n' | timeout 10 gnutls-cli --insecure --priority "$prio" -p "$SPORT" "$PEER_IP" >"$WORK/cli.out" 2>&1
done
sleep 0.5
stop_ehp
DEC=(-d "tcp.port==$SPORT,tls")
reqs=$(tshark "${DEC[@]}" -r "$WORK/srv.pcapng" -Y 'http.request.uri == "/srv"' 2>/dev/null | wc -l)
resp=$(tshark "${DEC[@]}" -r "$WORK/srv.pcapng" -Y 'http.response.code == 200' 2>/dev/null | wc -l)
sh13=$(tshark "${DEC[@]}" -r "$WORK/srv.pcapng" -Y 'tls.handshake.type == 2 && tls.handshake.extensions.supported_version == 0x0304' 2>/dev/null | wc -l)
check "server: both requests and responses decrypt from the file alone ($reqs, $resp; $sh13 TLS 1.3)" \
  test "$reqs" -eq 2 -a "$resp" -eq 2 -a "$sh13" -eq 1
check "server: the key check proves both sessions' keys" grep -q "key check .*libssl.so.0: 2 verified, 0 failed" "$WORK/s.log"
[[ $FAIL -eq 0 ]] || sed 's/^/  s| /' "$WORK/s.log"

# -m text (issue 14 item 6): the plaintext at SSL_write/SSL_read of the BoringSSL client.
"$EHP" tls -m text -q >"$WORK/text.out" 2>"$WORK/t.log" &
TP=$!
BG_PIDS+=("$TP")
wait_for grep -q capturing "$WORK/t.log"
"$CLIENT" "$PEER_IP" "$PORT" "$WORK/own.keys"
sleep 0.5
kill -INT "$TP"; wait "$TP"; trc=$?
writes=$(grep -a -c "^\[SSL_write\] .*comm=bclient" "$WORK/text.out")
gets=$(grep -a -c "^GET / HTTP/1.0" "$WORK/text.out")
reads=$(grep -a -c "^\[SSL_read\] .*comm=bclient" "$WORK/text.out")
check "-m text: exit 0 (rc=$trc)" test "$trc" -eq 0
check "-m text: the 3 requests as the client wrote them ($writes SSL_write records, $gets GET lines)" \
  test "$writes" -ge 3 -a "$gets" -eq 3
check "-m text: the server's responses as the client read them ($reads SSL_read records, HTTP status seen)" \
  bash -c "(( $reads >= 3 )) && grep -a -q '^HTTP/1.[01] 200' '$WORK/text.out'"
finish
