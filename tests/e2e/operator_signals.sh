#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 16, signals and TC leftovers.
# 1. Every signal a user may send to end the capture (SIGKILL aside) takes the clean stop: exit
#    0, a valid file holding the packets, no ehp_cap filter and no clsact left on the interface.
# 2. Two captures on one interface, stopped in either order, leave nothing; a filter of another
#    tool (and the clsact it lives on) is never removed.
TAG=e16sig
source "$(dirname "$0")/faults_lib.sh"
setup_veth 163

for sig in USR1 USR2 QUIT HUP TERM INT PIPE ALRM; do
  out=$WORK/$sig.pcapng
  start_ehp "$WORK/$sig.log" tls -m pcap -i "$HV" -w "$out" || { FAIL=$((FAIL + 1)); continue; }
  ping -c 3 -i 0.2 "$PEER_IP" >/dev/null 2>&1
  kill -"$sig" "$EHP_PID"
  if WAIT_S=10 wait_for bash -c "! kill -0 $EHP_PID"; then
    wait "$EHP_PID"; rc=$?
  else
    echo "  SIG$sig did not stop it: stopping it with SIGINT"
    kill -INT "$EHP_PID"; wait "$EHP_PID"; rc=999
  fi
  n=$(pkt_count "$out" 2>/dev/null)
  check "SIG$sig: clean stop, exit 0 (rc=$rc), a valid file with the pings ($n packets)" \
    bash -c "[[ $rc -eq 0 && ${n:-0} -ge 6 ]] && $(declare -f pcap_valid); pcap_valid '$out'"
  check "SIG$sig: no filter and no clsact left on $HV" no_tc_left "$HV"
  tc qdisc del dev "$HV" clsact 2>/dev/null   # so that each signal is judged on its own
done

# 2. Two captures on one interface.
two() {  # FIRST_TO_STOP: A or B
  start_ehp "$WORK/A.log" tls -m pcap -i "$HV" -w "$WORK/A.pcapng" || return 1
  local a=$EHP_PID
  start_ehp "$WORK/B.log" tls -m pcap -i "$HV" -w "$WORK/B.pcapng" || return 1
  local b=$EHP_PID
  ping -c 2 -i 0.2 "$PEER_IP" >/dev/null 2>&1
  local first=$a second=$b
  [[ $1 == B ]] && first=$b second=$a
  kill -INT "$first"; wait "$first"
  local left_mid; left_mid=$(tc filter show dev "$HV" ingress | grep -c 'ehp_cap')
  kill -INT "$second"; wait "$second"
  check "A and B on $HV, $1 stopped first: the other's filter stayed meanwhile ($left_mid), nothing left after both" \
    bash -c "[[ $left_mid -ge 1 ]] && $(declare -f no_tc_left); no_tc_left '$HV'"
  tc qdisc del dev "$HV" clsact 2>/dev/null
}
two A
two B

# Another tool's clsact and filter, there before the capture: both stay.
tc qdisc add dev "$HV" clsact
tc filter add dev "$HV" ingress prio 7 protocol all u32 match u32 0 0
start_ehp "$WORK/F.log" tls -m pcap -i "$HV" -w "$WORK/F.pcapng" || exit 1
ping -c 2 -i 0.2 "$PEER_IP" >/dev/null 2>&1
stop_ehp
check "another tool's filter made before the capture stays (and its clsact)" \
  bash -c "tc filter show dev '$HV' ingress | grep -q u32 && ! tc filter show dev '$HV' ingress | grep -q ehp_cap"
tc qdisc del dev "$HV" clsact 2>/dev/null

# A filter of another tool added while we run, on the clsact we created: both stay.
start_ehp "$WORK/G.log" tls -m pcap -i "$HV" -w "$WORK/G.pcapng" || exit 1
tc filter add dev "$HV" egress prio 9 protocol all u32 match u32 0 0
stop_ehp
check "another tool's filter added during the capture stays (and the clsact it needs)" \
  bash -c "tc filter show dev '$HV' egress | grep -q u32 && ! tc filter show dev '$HV' egress | grep -q ehp_cap"
tc qdisc del dev "$HV" clsact 2>/dev/null

# Two captures with another tool's filter on the clsact the first created: the last one out
# leaves the other tool's filter and its clsact.
start_ehp "$WORK/H1.log" tls -m pcap -i "$HV" -w "$WORK/H1.pcapng" || exit 1
h1=$EHP_PID
tc filter add dev "$HV" ingress prio 11 protocol all u32 match u32 0 0
start_ehp "$WORK/H2.log" tls -m pcap -i "$HV" -w "$WORK/H2.pcapng" || exit 1
h2=$EHP_PID
kill -INT "$h1"; wait "$h1"; kill -INT "$h2"; wait "$h2"
check "two captures and another tool's filter: that filter stays, ours are gone" \
  bash -c "tc filter show dev '$HV' ingress | grep -q u32 && ! tc filter show dev '$HV' ingress | grep -q ehp_cap && ! tc filter show dev '$HV' egress | grep -q ehp_cap"
tc qdisc del dev "$HV" clsact 2>/dev/null
finish
