#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Capture on a loopback device, compared with tcpdump on the same device: a frame sent on lo
# crosses lo's egress hook and then its ingress hook, so capturing both directions recorded every
# packet twice (Wireshark then flags half the capture as retransmissions). libpcap keeps one copy;
# so must we. We keep the egress one, where the sender's socket is still known, so a connection's
# first packet (curl's SYN, a new UDP socket's first datagram) is named after its sender too.
# Runs in a private netns so only this test's traffic is on lo.
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

# 20 UDP datagrams from a fresh unbound socket of one process to another process: each must be
# in the file once, every one (the first too) named after the sender.
cat >"$WORK/udp.py" <<'PY'
import ctypes, socket, sys
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)   # PR_SET_NAME -> comm
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if sys.argv[1] == "ehp-lo-recv":
    s.bind(("127.0.0.1", 5301)); print("ready", flush=True)
    for i in range(20): s.recv(2048)
else:
    for i in range(20): s.sendto(b"u" * (50 + i), ("127.0.0.1", 5301))
PY
nsx python3 "$WORK/udp.py" ehp-lo-recv >"$WORK/recv.log" &
RECV=$!
wait_for grep -q ready "$WORK/recv.log"
nsx python3 "$WORK/udp.py" ehp-lo-send
wait $RECV
# A TLS 1.3 request over lo: it must decrypt from the file alone.
ip netns exec "$NS" openssl s_server -accept 5443 -cert "$WORK/cert.pem" -key "$WORK/key.pem" -www -quiet \
  >"$WORK/s_server.log" 2>&1 &
BG_PIDS+=($!)
wait_for ns_listening 5443 || { echo "s_server did not start:"; cat "$WORK/s_server.log"; exit 1; }
nsx curl -sk --max-time 10 -o /dev/null "https://127.0.0.1:5443/over-loopback" || echo "curl failed"
sleep 0.5   # let the last FIN/ACKs pass
stop_ehp
# tcpdump drops what is still queued on its socket when interrupted: wait until its file holds
# at least as many packets as ours before stopping it.
nours=$(tshark -r "$OUT" 2>/dev/null | wc -l)
wait_for bash -c "[ \$(tcpdump -r '$TD' 2>/dev/null | wc -l) -ge $nours ]"
kill -INT $TDPID; wait $TDPID 2>/dev/null

check "ecapture-hp exits 0" test "$EHP_RC" -eq 0
check "the IDB says only egress is hooked on lo" \
  bash -c "tshark -r '$OUT' -T fields -e frame.interface_description -c 1 2>/dev/null | grep -qx 'ecapture-hp TC egress on lo'"
nudp=$(tshark -r "$OUT" -Y "udp.dstport == 5301" 2>/dev/null | wc -l)
check "each of the 20 UDP datagrams once (got $nudp)" test "$nudp" -eq 20
check "same packet set as tcpdump" python3 "$HERE/pcapcmp.py" same "$OUT" "$TD"
ndup=$(tshark -r "$OUT" -Y "tcp.analysis.retransmission or tcp.analysis.duplicate_ack" 2>/dev/null | wc -l)
check "no TCP segment seen twice (got $ndup)" test "$ndup" -eq 0
badudp=$(tshark -r "$OUT" -Y "udp.dstport == 5301" -T fields -e frame.comment 2>/dev/null | grep -vc "comm=ehp-lo-send")
check "every UDP datagram, the first too, names the sender ($badudp do not)" test "$badudp" -eq 0
syn=$(tshark -r "$OUT" -Y "tcp.flags.syn == 1 && tcp.flags.ack == 0" -T fields -e frame.comment 2>/dev/null)
check "curl's SYN names curl (got '$syn')" bash -c "[[ '$syn' == *comm=curl* ]]"
uri=$(tshark -r "$OUT" -Y http.request -T fields -e http.request.uri 2>/dev/null | sort -u)
check "the TLS request over lo decrypts from the file alone (got '$uri')" test "$uri" = "/over-loopback"
finish
