#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 3: live capture on a veth, compared with tcpdump recording the same interface with the
# same filter: same packets, right direction flags, wall-clock timestamps, process attribution
# in both directions, the filter keeps out what it should, nothing left behind in tc.
TAG=live
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
setup_veth 42
FILTER="icmp or udp port 5001 or udp port 5002 or tcp port 8080"
OUT=$WORK/out.pcapng
TD=$WORK/tcpdump.pcap

tcpdump -i "$HV" -w "$TD" -U -s 262144 $FILTER 2>"$WORK/tcpdump.log" &
TDPID=$!; BG_PIDS+=($TDPID)
wait_for grep -q "listening on" "$WORK/tcpdump.log" || { cat "$WORK/tcpdump.log"; exit 1; }
qdisc_before=$(tc qdisc show dev "$HV")
start_ehp "$WORK/ehp.log" tls -m pcap -i "$HV" -w "$OUT" $FILTER || exit 1
T0=$(date +%s)

# A UDP peer with a recognisable comm: sends N datagrams to DST:PORT from SPORT, or echoes them.
cat >"$WORK/udp.py" <<'PY'
import ctypes, socket, sys
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)   # PR_SET_NAME -> comm
mode, bind_ip, port = sys.argv[2], sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((bind_ip, port))
if mode == "send":
    for i in range(20):
        s.sendto(b"x" * (100 + i), (sys.argv[5], int(sys.argv[6])))
else:
    s.settimeout(10)
    for i in range(20):
        d, a = s.recvfrom(2048)
        s.sendto(d, a)
PY
ip netns exec "$NS" python3 "$WORK/udp.py" ehp-udp-peer echo 0.0.0.0 5001 &
ECHO=$!
sleep 0.3
python3 "$WORK/udp.py" ehp-udp-host send 0.0.0.0 5002 "$PEER_IP" 5001
wait $ECHO
# TCP: a plain HTTP server in the namespace with its own comm, curl on the host.
cat >"$WORK/web.py" <<'PY'
import ctypes, http.server, sys
ctypes.CDLL(None).prctl(15, b"ehp-http-peer", 0, 0, 0)
srv = http.server.HTTPServer(("0.0.0.0", 8080), http.server.SimpleHTTPRequestHandler)
print("ready", flush=True)
srv.handle_request(); srv.handle_request()
PY
(cd "$WORK" && ip netns exec "$NS" python3 "$WORK/web.py" >"$WORK/web.log" 2>&1) &
HTTPPID=$!
wait_for grep -q ready "$WORK/web.log"
curl -s -o /dev/null "http://$PEER_IP:8080/" ; curl -s -o /dev/null "http://$PEER_IP:8080/"
wait $HTTPPID
ping -c 3 -i 0.2 -q "$PEER_IP" >/dev/null
# Traffic the filter must keep out.
python3 "$WORK/udp.py" ehp-udp-noise send 0.0.0.0 5003 "$PEER_IP" 9999
sleep 0.5
stop_ehp
kill -INT $TDPID; wait $TDPID 2>/dev/null
T1=$(date +%s)

check "ecapture-hp exits 0" test "$EHP_RC" -eq 0
check "tshark reads the file" tshark -r "$OUT" -q
check "tcpdump reads the file" bash -c "tcpdump -r '$OUT' >/dev/null 2>&1"
check "same packet set as tcpdump" python3 "$HERE/pcapcmp.py" same "$OUT" "$TD"
python3 "$HERE/pcapcmp.py" dump "$OUT" >"$WORK/dump.jsonl"
python3 - "$WORK/dump.jsonl" "$T0" "$T1" >"$WORK/facts.txt" <<'PY'
import json, sys
pk = [json.loads(l) for l in open(sys.argv[1])]
t0, t1 = int(sys.argv[2]) - 2, int(sys.argv[3]) + 2
def udp_dport(p):
    b = bytes.fromhex(p["hex"])
    return int.from_bytes(b[36:38], "big") if len(b) > 38 and b[23] == 17 else None
def tcp_port(p, which):
    b = bytes.fromhex(p["hex"])
    if len(b) > 38 and b[23] == 6:
        return int.from_bytes(b[34 + which*2:36 + which*2], "big")
print("dirs", sorted({p["flags"] & 3 for p in pk if p["flags"] is not None}))
print("ts_ok", all(t0 <= p["ts_ns"] // 10**9 <= t1 for p in pk))
print("noise", sum(1 for p in pk if udp_dport(p) == 9999))
c = lambda p: p["comment"] or ""
print("udp_out_host", all("comm=ehp-udp-host" in c(p) for p in pk if udp_dport(p) == 5001))
print("udp_in_peer", all("comm=ehp-udp-peer" in c(p) for p in pk if udp_dport(p) == 5002))
print("udp_count", sum(1 for p in pk if udp_dport(p) in (5001, 5002)))
print("tcp_out_curl", all("comm=curl" in c(p) for p in pk if tcp_port(p, 1) == 8080))
def tcp_flags_payload(p):
    b = bytes.fromhex(p["hex"])
    ihl = (b[14] & 15) * 4
    tot = int.from_bytes(b[16:18], "big")
    doff = (b[14 + ihl + 12] >> 4) * 4
    return b[14 + ihl + 13], tot - ihl - doff
# A bare ACK the server's kernel sends before the server process has touched its new socket
# (accept() not yet returned) can only be named after the receiver; every segment that carries
# the server's data, its SYN-ACK and its FIN must name the server.
print("tcp_in_peer", all("comm=ehp-http-peer" in c(p) for p in pk if tcp_port(p, 0) == 8080
                          and (tcp_flags_payload(p)[1] > 0 or tcp_flags_payload(p)[0] & 3)))
print("tcp_count", sum(1 for p in pk if 8080 in (tcp_port(p, 0), tcp_port(p, 1))))
PY
cat "$WORK/facts.txt"
fact() { grep -qxF "$1" "$WORK/facts.txt"; }
check "both direction flags present (1=in, 2=out)" fact "dirs [1, 2]"
check "timestamps are wall clock" fact "ts_ok True"
check "filter keeps out udp/9999" fact "noise 0"
check "40 UDP packets captured" fact "udp_count 40"
check "outbound UDP names the host sender" fact "udp_out_host True"
check "inbound UDP names the namespace sender" fact "udp_in_peer True"
check "outbound TCP names curl" fact "tcp_out_curl True"
check "inbound TCP names the namespace server" fact "tcp_in_peer True"
check "no tc filter left on ingress" test -z "$(tc filter show dev "$HV" ingress)"
check "no tc filter left on egress" test -z "$(tc filter show dev "$HV" egress)"
check "qdiscs as before" test "$(tc qdisc show dev "$HV")" = "$qdisc_before"
finish
