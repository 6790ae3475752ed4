#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 15 item 4: `-i any`, as tcpdump's, with the design card's command line (no subcommand):
# every interface that is up gets its IDB and its packets (two veths here, lo too), an interface
# that is down is left out, and one whose link type is raw IP (a tun) is named on stderr and left
# out (libpcap refuses a section that mixes link types).
TAG=anyi
source "$(dirname "$0")/lib.sh"
setup_veth 141
NS2=ehp-anyi2; HV2=eh-anyi2-h; NV2=eh-anyi2-n
TUN=eh-anyi-t; DOWN=eh-anyi-x
extra_cleanup() {
  ip netns del "$NS2" 2>/dev/null; ip link del "$HV2" 2>/dev/null
  ip link del "$TUN" 2>/dev/null; ip link del "$DOWN" 2>/dev/null
  cleanup
}
trap extra_cleanup EXIT
ip netns del "$NS2" 2>/dev/null; ip link del "$HV2" 2>/dev/null
ip netns add "$NS2"
ip link add "$HV2" type veth peer name "$NV2"
ip link set "$NV2" netns "$NS2"
ip addr add 10.213.142.1/24 dev "$HV2"; ip link set "$HV2" up
ip -n "$NS2" addr add 10.213.142.2/24 dev "$NV2"; ip -n "$NS2" link set "$NV2" up
ip tuntap add dev "$TUN" mode tun && ip link set "$TUN" up
ip link add "$DOWN" type veth peer name "${DOWN}p"   # left down

OUT=$WORK/any.pcapng
TD=$WORK/td.pcap
TD1=$WORK/td1.pcap
ping -c 1 -W 2 -q "$PEER_IP" >/dev/null; ping -c 1 -W 2 -q 10.213.142.2 >/dev/null  # neighbours resolved
tcpdump -i "$HV2" -w "$TD" -U icmp 2>"$WORK/td.log" &
TDPID=$!; BG_PIDS+=("$TDPID")
tcpdump -i "$HV" -w "$TD1" -U icmp 2>"$WORK/td1.log" &
TDPID1=$!; BG_PIDS+=("$TDPID1")
wait_for grep -q "listening on" "$WORK/td.log" || { cat "$WORK/td.log"; exit 1; }
wait_for grep -q "listening on" "$WORK/td1.log" || { cat "$WORK/td1.log"; exit 1; }
start_ehp "$WORK/ehp.log" --cpus "0-$(($(nproc) - 1))" -i any -w "$OUT" icmp || exit 1
ping -c 5 -i 0.1 -q "$PEER_IP" | grep transmitted
ping -c 7 -i 0.1 -q 10.213.142.2 | grep transmitted
sleep 0.5
stop_ehp
kill -INT "$TDPID" "$TDPID1"; wait "$TDPID" "$TDPID1" 2>/dev/null
sed 's/^/  | /' "$WORK/ehp.log"

check "exit 0" test "$EHP_RC" -eq 0
valid() { [[ -z $(tshark -r "$1" -q 2>&1 >/dev/null | grep -v "Running as user") ]] && capinfos -c "$1" >/dev/null 2>&1; }
check "file valid (tshark, capinfos)" valid "$OUT"
idbs=$(tshark -r "$OUT" -Y frame -T fields -e frame.interface_name 2>/dev/null | sort | uniq -c)
echo "  packets per interface: $(tr '\n' ' ' <<<"$idbs")"
names=$(capinfos -M "$OUT" 2>/dev/null | sed -n 's/^ *Name = //p' | sort | xargs)
echo "  IDBs: $names"
n1=$(tshark -r "$OUT" -Y "frame.interface_name == \"$HV\" && icmp" 2>/dev/null | wc -l)
n2=$(tshark -r "$OUT" -Y "frame.interface_name == \"$HV2\" && icmp" 2>/dev/null | wc -l)
ntd=$(tcpdump -r "$TD" 2>/dev/null | wc -l)
ntd1=$(tcpdump -r "$TD1" 2>/dev/null | wc -l)
check "the first veth's packets equal tcpdump's on it, on its own IDB ($n1 vs $ntd1)" test "$n1" -eq 10 -a "$ntd1" -eq 10
check "the second veth's packets equal tcpdump's on it ($n2 vs $ntd)" test "$n2" -eq 14 -a "$ntd" -eq 14
check "lo and both veths have an IDB" bash -c "grep -qw lo <<<'$names' && grep -qw '$HV' <<<'$names' && grep -qw '$HV2' <<<'$names'"
check "the interface that is down has none" bash -c "! grep -qw '$DOWN' <<<'$names'"
check "the raw-IP tun has none, and is named on stderr" \
  bash -c "! grep -qw '$TUN' <<<'$names' && grep -q 'leaving out $TUN (raw IP' '$WORK/ehp.log'"
check "no tc filter left on $HV, $HV2 or lo" \
  bash -c "! tc filter show dev '$HV' ingress | grep -q ehp_ && ! tc filter show dev '$HV2' egress | grep -q ehp_ && ! tc filter show dev lo ingress | grep -q ehp_"
finish
