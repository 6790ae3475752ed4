#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# One home for each fact (the pipeline redesign), proven on the two bugs that having several
# homes caused:
#  - an ipip tunnel (ARPHRD_TUNNEL) carries raw IP at TC: the filter must be compiled for raw IP,
#    like the IDB and the BPF side say (it was compiled for Ethernet and matched nothing), and
#    Wireshark's extcap must announce RAW (it announced Ethernet);
#  - the extcap entry point must not recurse into itself when it cannot make its memory file
#    (it did, without bound: the compiler made the tail call a loop, so it spun forever).
TAG=pf
source "$(dirname "$0")/lib.sh"
setup_veth 137

# An ARPHRD_TUNNEL device (what an ipip tunnel is; this kernel has no ipip module): a tun
# device whose link type is set with TUNSETLINK. A helper writes ICMP echo requests into it
# (they arrive on its ingress); the kernel's replies leave on its egress.
TUN=eh-pf-t
cat >"$WORK/tun.py" <<'PY'
import fcntl, os, struct, sys, time
name, go = sys.argv[1], sys.argv[2]
TUNSETIFF, TUNSETLINK = 0x400454ca, 0x400454cd
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), 0x0001 | 0x1000))  # IFF_TUN | IFF_NO_PI
fcntl.ioctl(fd, TUNSETLINK, 768)  # ARPHRD_TUNNEL
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return (~s) & 0xffff
src, dst = bytes([192, 168, 137, 2]), bytes([192, 168, 137, 1])
for seq in range(1, 6):
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x4242, seq) + b"ehp-tunnel-test!"
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq, 0, 64, 1, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    os.write(fd, ip + icmp)
    time.sleep(0.2)
time.sleep(1)
PY
python3 "$WORK/tun.py" "$TUN" "$WORK/go" >"$WORK/tun.log" 2>&1 &
TUNPY=$!
BG_PIDS+=("$TUNPY")
wait_for grep -q ready "$WORK/tun.log"
ip addr add 192.168.137.1/30 dev "$TUN"
ip link set "$TUN" up
sysctl -qw "net.ipv4.conf.$TUN.rp_filter=0" 2>/dev/null

check "setup: $TUN is ARPHRD_TUNNEL (768), as an ipip tunnel is" test "$(cat /sys/class/net/$TUN/type 2>/dev/null)" = 768

tcpdump -i "$TUN" -w "$WORK/td.pcap" -U icmp 2>/dev/null &
TD=$!
BG_PIDS+=("$TD")
start_ehp "$WORK/t.log" tls -m pcap -i "$TUN" -w "$WORK/t.pcapng" icmp
dlt=$("$EHP" --extcap-interface "ecapture-hp_$TUN" --extcap-dlts 2>&1)
sleep 0.5
touch "$WORK/go"
wait "$TUNPY" 2>/dev/null
stop_ehp
kill -INT "$TD"; wait "$TD" 2>/dev/null
ours=$(tshark -r "$WORK/t.pcapng" -Y icmp 2>/dev/null | wc -l)
theirs=$(tcpdump -r "$WORK/td.pcap" icmp 2>/dev/null | wc -l)
check "tunnel + filter 'icmp': exit 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0
check "tunnel + filter 'icmp': the 10 ICMP packets (5 requests, 5 replies) are captured ($ours)" test "$ours" -eq 10
check "tunnel + filter 'icmp': the same count as tcpdump ($ours vs $theirs)" test "$ours" -eq "$theirs"
check "tunnel: the IDB says Raw IP" bash -c "capinfos -E '$WORK/t.pcapng' | grep -qi 'raw ip'"
check "extcap --extcap-dlts on the tunnel announces RAW ($dlt)" bash -c "grep -q 'number=101' <<<'$dlt'"
dlt=$("$EHP" --extcap-interface "ecapture-hp_$HV" --extcap-dlts 2>&1)
check "extcap --extcap-dlts on a veth announces Ethernet ($dlt)" bash -c "grep -q 'number=1}' <<<'$dlt'"

# The extcap capture cannot make its memory file (no fd left for memfd_create): it must fail
# with a message, not recurse without end.
mkfifo "$WORK/ff"
# (The recursion was compiled into an endless loop: without the fix this times out.)
err=$(timeout 10 prlimit --nofile=4 "$EHP" --extcap-interface "ecapture-hp_$HV" --capture --fifo "$WORK/ff" 2>&1 </dev/null >/dev/null)
rc=$?
check "extcap with no fd for its memory file: ends, no crash (rc=$rc: not 124, < 128)" test "$rc" -ne 124 -a "$rc" -lt 128
check "extcap with no fd for its memory file: fails with a message ($err)" test -n "$err" -a "$rc" -ne 0
finish
