#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 15 item 4 (hotplug) / issue 16: with `-i any`, an interface that appears after the start
# (a container's veth: created, its peer moved into a namespace, brought up) gets its own IDB and
# its packets, as many as tcpdump sees on it; one that is raw IP (a tun) is named and left out;
# deleting the new one again does not stop the capture; the file stays valid.
# --no-reattach keeps the interfaces of the start: the new one is not captured.
TAG=anyhp
source "$(dirname "$0")/faults_lib.sh"
setup_veth 197
NS2=ehp-anyhp2; HV2=eh-anyhp2-h; NV2=eh-anyhp2-n; TUN=eh-anyhp-t
extra_cleanup() {
  ip netns del "$NS2" 2>/dev/null; ip link del "$HV2" 2>/dev/null; ip link del "$TUN" 2>/dev/null
  cleanup
}
trap extra_cleanup EXIT
ip netns del "$NS2" 2>/dev/null; ip link del "$HV2" 2>/dev/null; ip link del "$TUN" 2>/dev/null
ip netns add "$NS2"
mk_new() {
  ip link add "$HV2" type veth peer name "$NV2" netns "$NS2" && ip addr add 10.213.198.1/24 dev "$HV2" &&
    ip link set "$HV2" up && ip -n "$NS2" addr add 10.213.198.2/24 dev "$NV2" && ip -n "$NS2" link set "$NV2" up
}

# run_any LOG OUT ARGS...: -i any (plus ARGS), then a veth and a tun appear; pings on the veth
# (tcpdump counts them there); the veth is deleted again. Sets EHP_RC, TD_N.
run_any() {
  local log=$1 out=$2; shift 2
  start_ehp "$log" --cpus "0-$(($(nproc) - 1))" -i any "$@" -w "$out" icmp || return 1
  mk_new
  ip tuntap add dev "$TUN" mode tun && ip link set "$TUN" up
  WAIT_S=3 wait_for grep -q "new interface '$HV2'" "$log"
  tcpdump --immediate-mode -i "$HV2" -w "$WORK/td.pcap" -U icmp 2>"$WORK/td.log" &
  local td=$!; BG_PIDS+=("$td")
  wait_for grep -q "listening on" "$WORK/td.log" || cat "$WORK/td.log"
  ping -c 6 -i 0.2 -q 10.213.198.2 >/dev/null
  sleep 0.3
  kill -INT "$td"; wait "$td" 2>/dev/null
  TD_N=$(tcpdump -r "$WORK/td.pcap" 2>/dev/null | wc -l)
  ip link del "$HV2"; ip link del "$TUN"
  WAIT_S=2 wait_for grep -q "interface '$HV2' is gone" "$log"
  sleep 0.5
  ALIVE=0; kill -0 "$EHP_PID" 2>/dev/null && ALIVE=1
  stop_ehp
  sed 's/^/  | /' "$log"
}

OUT=$WORK/any.pcapng
run_any "$WORK/any.log" "$OUT" || exit 1
check "exit 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0
check "the new veth is said on stderr ($(grep "new interface" "$WORK/any.log"))" \
  grep -q "ecapture-hp: -i any: new interface '$HV2' (ifindex [0-9]*): capturing it as interface #[0-9]*" "$WORK/any.log"
check "the new tun is named and left out" grep -q "leaving out new interface $TUN (raw IP" "$WORK/any.log"
check "deleting the new veth does not stop the capture" test "$ALIVE" -eq 1
check "the file is valid" pcap_valid "$OUT"
names=$(capinfos -M "$OUT" 2>/dev/null | sed -n 's/^ *Name = //p' | xargs)
echo "  IDBs: $names"
check "the new veth has an IDB, the tun none" bash -c "grep -qw '$HV2' <<<'$names' && ! grep -qw '$TUN' <<<'$names'"
n_new=$(tshark -r "$OUT" -Y "icmp && frame.interface_name == \"$HV2\"" 2>/dev/null | wc -l)
check "its packets are on it, as many as tcpdump saw there ($n_new vs $TD_N, 12)" test "$n_new" -eq 12 -a "$TD_N" -eq 12
n_first=$(tshark -r "$OUT" -Y "icmp && frame.interface_name == \"$HV\"" 2>/dev/null | wc -l)
check "none of them on an interface of the start ($n_first on $HV)" test "$n_first" -eq 0

OUT2=$WORK/fixed.pcapng
run_any "$WORK/fixed.log" "$OUT2" --no-reattach || exit 1
names2=$(capinfos -M "$OUT2" 2>/dev/null | sed -n 's/^ *Name = //p' | xargs)
check "--no-reattach: the new veth is not captured (IDBs: $names2)" \
  bash -c "! grep -qw '$HV2' <<<'$names2' && ! grep -q 'new interface' '$WORK/fixed.log'"
check "--no-reattach: exit 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0
check "--no-reattach: a valid file" pcap_valid "$OUT2"
finish
