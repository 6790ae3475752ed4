#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 5, stop conditions and statistics: -c N and -a packets:N write exactly N packets and stop
# by themselves; -a duration:S stops after S seconds; -a filesize:KB stops once the file holds
# KB kB; -q silences the periodic line but not the exit summary; the exit summary has one
# "Packets received/dropped on interface 'X': N/M" line per interface whose N matches the
# packets of that interface in the file.
TAG=p11stop
source "$(dirname "$0")/operator_common.sh"
setup_veth 113
# A second veth pair into the same namespace, for the per-interface summary.
HV2=$TAG-h2
NV2=$TAG-n2
ip link del "$HV2" 2>/dev/null
ip link add "$HV2" type veth peer name "$NV2"
ip link set "$NV2" netns "$NS"
ip addr add 10.213.114.1/24 dev "$HV2"
ip link set "$HV2" up
ip -n "$NS" addr add 10.213.114.2/24 dev "$NV2"
ip -n "$NS" link set "$NV2" up
trap 'ip link del "$HV2" 2>/dev/null; cleanup' EXIT

npkts() { capinfos -c -M "$1" 2>/dev/null | sed -nE 's/^Number of packets: *([0-9]+).*/\1/p'; }
# Background pings until the capture ends (ICMP both ways on the first veth).
pinger() { ping -q -i 0.02 -w 30 "$PEER_IP" >/dev/null 2>&1 & PING_PID=$!; BG_PIDS+=($PING_PID); }

# run_until_exit LOG ARGS... : starts ecapture-hp with traffic and waits (max 20 s) for it to stop
# by itself; sets EHP_RC and ELAPSED_MS.
run_until_exit() {
  local log=$1; shift
  local t0; t0=$(date +%s%N)
  start_ehp "$log" "$@" || return 1
  pinger
  local deadline=$((SECONDS + 20))
  while kill -0 "$EHP_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
  if kill -0 "$EHP_PID" 2>/dev/null; then echo "  did not stop by itself"; stop_ehp; EHP_RC=99; else wait "$EHP_PID"; EHP_RC=$?; fi
  ELAPSED_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
  kill "$PING_PID" 2>/dev/null; wait "$PING_PID" 2>/dev/null
}

run_until_exit "$WORK/c.log" tls -m pcap -i "$HV" -w "$WORK/c.pcapng" -c 50 icmp
check "-c 50 stops by itself, exit 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0
check "-c 50 writes exactly 50 packets ($(npkts "$WORK/c.pcapng"))" test "$(npkts "$WORK/c.pcapng")" = 50

run_until_exit "$WORK/p.log" tls -m pcap -i "$HV" -w "$WORK/p.pcapng" -a packets:37 icmp
check "-a packets:37 stops by itself, exit 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0
check "-a packets:37 writes exactly 37 packets ($(npkts "$WORK/p.pcapng"))" test "$(npkts "$WORK/p.pcapng")" = 37

run_until_exit "$WORK/d.log" tls -m pcap -i "$HV" -w "$WORK/d.pcapng" -a duration:2 icmp
check "-a duration:2 stops by itself, exit 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0
# Elapsed includes start-up (BPF load, libssl calibration) before the 2 s start counting.
check "-a duration:2 stops after 2 s of capture (${ELAPSED_MS} ms incl. start-up)" test "$ELAPSED_MS" -ge 2000 -a "$ELAPSED_MS" -lt 9000
check "-a duration:2 file reads with tshark" tshark -r "$WORK/d.pcapng" -q

# -a filesize: big pings so the file grows quickly.
t0=$(date +%s%N)
start_ehp "$WORK/f.log" tls -m pcap -i "$HV" -w "$WORK/f.pcapng" -a filesize:30 icmp || exit 1
ping -q -i 0.01 -s 1200 -w 20 "$PEER_IP" >/dev/null 2>&1 & PING_PID=$!; BG_PIDS+=($PING_PID)
WAIT_S=20 wait_for bash -c "! kill -0 $EHP_PID 2>/dev/null"
wait "$EHP_PID"; EHP_RC=$?
kill "$PING_PID" 2>/dev/null
fsize=$(stat -c %s "$WORK/f.pcapng")
check "-a filesize:30 stops by itself, exit 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0
check "-a filesize:30 file holds >= 30000 bytes and not far more ($fsize)" test "$fsize" -ge 30000 -a "$fsize" -lt 200000
if grep -q stop_after_bytes "$(dirname "$0")/../../engine/engine.cc" 2>/dev/null; then
  check "-a filesize:30 ends within one packet of the limit ($fsize < 30000 + 1400 + ISB)" test "$fsize" -lt 31600
fi
check "-a filesize:30 file reads with tshark and tcpdump" bash -c "tshark -r '$WORK/f.pcapng' -q && tcpdump -r '$WORK/f.pcapng' >/dev/null 2>&1"

# Periodic line: present without -q (the run lasts > 2 s), absent with -q; summary in both.
run_until_exit "$WORK/nq.log" tls -m pcap -i "$HV" -w "$WORK/nq.pcapng" -a duration:3 icmp
check "without -q the periodic statistics line appears" grep -q "drops: ring=" "$WORK/nq.log"
"$EHP" tls -m pcap -i "$HV" -w "$WORK/q.pcapng" -q -a duration:3 icmp 2>"$WORK/q.log" &
EHP_PID=$!; BG_PIDS+=($EHP_PID)
pinger
wait "$EHP_PID"; EHP_RC=$?
kill "$PING_PID" 2>/dev/null
check "-q run exits 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0
check "-q silences the periodic line" bash -c "! grep -q 'drops: ring=' '$WORK/q.log'"
check "-q keeps the exit summary" grep -q "Packets received/dropped on interface '$HV'" "$WORK/q.log"

# Two interfaces: one summary line each, counting that interface's packets.
start_ehp "$WORK/two.log" tls -m pcap -i "$HV" -i "$HV2" -w "$WORK/two.pcapng" icmp || exit 1
ping -q -i 0.02 -c 40 "$PEER_IP" >/dev/null 2>&1
ping -q -i 0.02 -c 15 10.213.114.2 >/dev/null 2>&1
stop_ehp
sed -n "/Packets received/p" "$WORK/two.log" | sed 's/^/  /'
in_file() { tshark -r "$WORK/two.pcapng" -Y "frame.interface_name == \"$1\"" 2>/dev/null | grep -c .; }
summary_n() { sed -nE "s/^Packets received\/dropped on interface '$1': ([0-9]+)\/([0-9]+)$/\1/p" "$WORK/two.log"; }
n1=$(in_file "$HV"); n2=$(in_file "$HV2"); s1=$(summary_n "$HV"); s2=$(summary_n "$HV2")
check "summary line for each interface" test -n "$s1" -a -n "$s2"
check "summary for $HV counts its packets ($s1 vs $n1 in the file)" test "${s1:-x}" = "$n1"
check "summary for $HV2 counts its packets ($s2 vs $n2 in the file)" test "${s2:-x}" = "$n2"
check "both interfaces captured (>= 80 and >= 30 packets)" test "$n1" -ge 80 -a "$n2" -ge 30
finish
