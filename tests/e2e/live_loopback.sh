#!/usr/bin/env bash
# Capture on a loopback device, compared with tcpdump on the same device: a frame sent on lo
# crosses lo's egress hook and then its ingress hook, so capturing both directions recorded every
# packet twice (Wireshark then flags half the capture as retransmissions). libpcap keeps one copy
# (the incoming one); so must we. Runs in a private netns so only this test's traffic is on lo.
TAG=lo
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
ip netns del "$NS" 2>/dev/null
ip netns add "$NS"
ip -n "$NS" link set lo up
make_cert
OUT=$WORK/out.pcapng
TD=$WORK/tcpdump.pcap
FILTER="udp port 5301 or tcp port 5443"
nsx() { ip netns exec "$NS" "$@"; }

ip netns exec "$NS" tcpdump -i lo -w "$TD" -U -s 262144 $FILTER 2>"$WORK/tcpdump.log" &
TDPID=$!; BG_PIDS+=($TDPID)
wait_for grep -q "listening on" "$WORK/tcpdump.log" || { cat "$WORK/tcpdump.log"; exit 1; }
ip netns exec "$NS" "$EHP" tls -m pcap -i lo -w "$OUT" $FILTER 2>"$WORK/ehp.log" &
EHP_PID=$!; BG_PIDS+=($EHP_PID)
wait_for grep -q capturing "$WORK/ehp.log" || { echo "ecapture-hp did not start:"; cat "$WORK/ehp.log"; exit 1; }

# 20 UDP datagrams, each must be in the file once.
nsx python3 -c '
import socket
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(("127.0.0.1", 5301))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(20): s.sendto(b"u" * (50 + i), ("127.0.0.1", 5301))
for i in range(20): r.recv(2048)'
# A TLS 1.3 request over lo: it must decrypt from the file alone.
ip netns exec "$NS" openssl s_server -accept 5443 -cert "$WORK/cert.pem" -key "$WORK/key.pem" -www -quiet \
  >"$WORK/s_server.log" 2>&1 &
BG_PIDS+=($!)
wait_for ns_listening 5443
nsx curl -sk --max-time 10 -o /dev/null "https://127.0.0.1:5443/over-loopback" || echo "curl failed"
sleep 0.5   # let the last FIN/ACKs pass
stop_ehp
kill -INT $TDPID; wait $TDPID 2>/dev/null

check "ecapture-hp exits 0" test "$EHP_RC" -eq 0
check "the IDB says only ingress is hooked on lo" \
  bash -c "tshark -r '$OUT' -T fields -e frame.interface_description -c 1 2>/dev/null | grep -qx 'ecapture-hp TC ingress on lo'"
nudp=$(tshark -r "$OUT" -Y "udp.dstport == 5301" 2>/dev/null | wc -l)
check "each of the 20 UDP datagrams once (got $nudp)" test "$nudp" -eq 20
check "same packet set as tcpdump" python3 "$HERE/pcapcmp.py" same "$OUT" "$TD"
ndup=$(tshark -r "$OUT" -Y "tcp.analysis.retransmission or tcp.analysis.duplicate_ack" 2>/dev/null | wc -l)
check "no TCP segment seen twice (got $ndup)" test "$ndup" -eq 0
uri=$(tshark -r "$OUT" -Y http.request -T fields -e http.request.uri 2>/dev/null | sort -u)
check "the TLS request over lo decrypts from the file alone (got '$uri')" test "$uri" = "/over-loopback"
finish
