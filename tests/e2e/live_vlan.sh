#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# VLAN tags the kernel moved into skb metadata (rx VLAN offload: a tagged frame arriving on an
# Ethernet device has its 802.1Q/802.1ad tag stripped before TC and taps see it) must be back in
# the captured frame, as libpcap puts them back from PACKET_AUXDATA: compared with tcpdump on the
# same interface, packet for packet. Tagged frames are sent raw (AF_PACKET) into a veth; the
# capture listens on its peer in a namespace.
TAG=vlan
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
setup_veth 44
OUT=$WORK/out.pcapng
TD=$WORK/tcpdump.pcap
# "or vlan": a QinQ frame keeps its inner tag in the data after the outer one is taken out,
# so the port test alone misses it (in tcpdump as well).
FILTER="udp port 5678 or vlan"

ip netns exec "$NS" tcpdump -i "$NV" -w "$TD" -U -s 262144 $FILTER 2>"$WORK/tcpdump.log" &
BG_PIDS+=($!); TDPID=$!
wait_for grep -q "listening on" "$WORK/tcpdump.log" || { cat "$WORK/tcpdump.log"; exit 1; }
ip netns exec "$NS" "$EHP" tls -m pcap -i "$NV" -w "$OUT" $FILTER 2>"$WORK/ehp.log" &
EHP_PID=$!; BG_PIDS+=($EHP_PID)
wait_for grep -q capturing "$WORK/ehp.log" || { echo "ecapture-hp did not start:"; cat "$WORK/ehp.log"; exit 1; }

# Frames: 802.1Q vid 100 (two sizes), 802.1Q vid 200 with priority 5, QinQ 802.1ad 300 over
# 802.1Q 400, and one untagged; all UDP 10.77.0.1:1234 -> 10.77.0.2:5678.
python3 - "$HV" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
def ip_udp(n):
    udp = struct.pack("!HHHH", 1234, 5678, 8 + n, 0) + b"v" * n
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton("10.77.0.1"), socket.inet_aton("10.77.0.2"))
    return ip + udp
mac = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01"
tag = lambda tpid, tci: struct.pack("!HH", tpid, tci)
frames = [
    mac + tag(0x8100, 100) + b"\x08\x00" + ip_udp(10),
    mac + tag(0x8100, 100) + b"\x08\x00" + ip_udp(1000),
    mac + tag(0x8100, (5 << 13) | 200) + b"\x08\x00" + ip_udp(20),
    mac + tag(0x88a8, 300) + tag(0x8100, 400) + b"\x08\x00" + ip_udp(30),
    mac + b"\x08\x00" + ip_udp(40),
]
for f in frames:
    s.send(f + b"\0" * max(0, 60 - len(f)))
PY
# Wait until tcpdump wrote all 5 (it drops what is still queued on its socket when interrupted;
# and taps run before TC ingress, so by then our hook has seen them too), then stop both.
wait_for bash -c "[ \$(tcpdump -r '$TD' 2>/dev/null | wc -l) -ge 5 ]"
stop_ehp
kill -INT $TDPID; wait $TDPID 2>/dev/null

check "ecapture-hp exits 0" test "$EHP_RC" -eq 0
n=$(tshark -r "$OUT" 2>/dev/null | wc -l)
check "5 frames captured (got $n)" test "$n" -eq 5
check "same frames as tcpdump, tags included" python3 "$HERE/pcapcmp.py" same "$OUT" "$TD"
ids=$(tshark -r "$OUT" -T fields -e ieee8021ad.id -e vlan.id 2>/dev/null | tr '\t\n' '/ ')
check "VLAN ids in the file: 100 100 200 300/400 and none (got '$ids')" test "$ids" = "/100 /100 /200 300/400 / "
prio=$(tshark -r "$OUT" -Y "vlan.id == 200" -T fields -e vlan.priority 2>/dev/null)
check "the priority bits survive (got '$prio')" test "$prio" = "5"
lens=$(tshark -r "$OUT" -T fields -e frame.len -e frame.cap_len 2>/dev/null | awk '$1 != $2' | wc -l)
check "wire length counts the tag (frame.len = cap_len for every frame)" test "$lens" -eq 0
finish
