#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# A traced process that dies mid-handshake, and libssl unloaded under the uprobes:
#  - openssl s_client sends its ClientHello to a server that never answers and is SIGKILLed:
#    the hold-back keeps the flow at most --hold-ms, then releases it while still running
#    (stats line "held flows 0" before shutdown), counts it (exit summary "on timeout"), and the
#    ClientHello is in the file;
#  - a client that dlopen()s libssl per request and dlclose()s it after: no crash, every request
#    still decrypts from the file alone.
TAG=tlsx
source "$(dirname "$0")/faults_lib.sh"
setup_veth 126
make_cert
start_py_https 8443 || { echo "python https failed"; exit 1; }
cc -O1 -o "$WORK/dlssl" "$(dirname "$0")/faults_dlssl.c" -ldl || { echo "cannot build faults_dlssl.c"; exit 1; }
# A TCP server that reads and never answers: the handshake can't finish.
cat >"$WORK/mute.py" <<'PY'
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9443)); s.listen(8); print("ready", flush=True)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
    print("got", len(c.recv(65536)), flush=True)
PY
ip netns exec "$NS" python3 "$WORK/mute.py" >"$WORK/mute.log" 2>&1 &
BG_PIDS+=($!)
wait_for grep -q ready "$WORK/mute.log" || exit 1

HOLD_MS=4000
start_ehp "$WORK/ehp.log" tls -m pcap -i "$HV" -w "$WORK/out.pcapng" --hold-ms $HOLD_MS || exit 1
mkfifo "$WORK/stdin"
exec 7<>"$WORK/stdin"   # the client's stdin: open, never written, never EOF
openssl s_client -connect "$PEER_IP:9443" <"$WORK/stdin" >/dev/null 2>&1 &
CLIENT=$!
wait_for grep -q "^got [1-9]" "$WORK/mute.log" || echo "  the mute server got no ClientHello"
kill -KILL "$CLIENT"
killed_line=$(wc -l <"$WORK/ehp.log")
held_then_released() {
  tail -n +"$((killed_line + 1))" "$WORK/ehp.log" | grep -q "held flows [1-9]" &&
    tail -n 1 "$WORK/ehp.log" | grep -q "held flows 0,"
}
WAIT_S=$((HOLD_MS / 1000 + 10)) wait_for held_then_released
check "the dead client's flow was held, then released by timeout while running" held_then_released

# libssl mapped and unmapped per request
"$WORK/dlssl" "$PEER_IP" 8443 3 >"$WORK/dlssl.out" 2>&1
cat "$WORK/dlssl.out" | sed 's/^/  /'
check "dlopen/dlclose client completed its 3 requests" test "$(grep -c ' ok ' "$WORK/dlssl.out")" -eq 3
check "the capture survived the unloads" kill -0 "$EHP_PID"
# and a normal client after the unloads is still traced
curl -sk --max-time 10 -o /dev/null "https://$PEER_IP:8443/after-dlclose"
sleep 0.5   # let the last FIN/ACKs pass TC
stop_ehp
grep -E "written|received" "$WORK/ehp.log"
check "exit 0" test "$EHP_RC" -eq 0
timeouts=$(summary_field "$WORK/ehp.log" "on timeout ([0-9]+)")
check "the timeout release is counted in the exit summary (${timeouts:-?})" test "${timeouts:-0}" -ge 1
check "file valid" pcap_valid "$WORK/out.pcapng"
check "the dead client's ClientHello is in the file" \
  bash -c "tshark -r '$WORK/out.pcapng' -d tcp.port==9443,tls -Y 'tcp.dstport==9443 && tls.handshake.type==1' 2>/dev/null | grep -q ."
tshark -r "$WORK/out.pcapng" -d tcp.port==8443,tls -Y http.request -T fields -e http.request.uri 2>/dev/null | sort -u >"$WORK/seen.txt"
for u in /dl-1 /dl-2 /dl-3 /after-dlclose; do
  check "$u decrypts from the file alone" grep -qxF "$u" "$WORK/seen.txt"
done
check "nothing left on $HV" no_tc_left "$HV"
finish
