#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# ENOSPC: output on a 4 MiB tmpfs under a UDP flood. The capture stops by itself, exits != 0
# with one clear error line, the file is a valid pcapng (cut back to the last complete block),
# and no TC filter or clsact is left behind.
TAG=nospc
source "$(dirname "$0")/faults_lib.sh"
setup_veth 124
MNT=$WORK/small
mkdir -p "$MNT"
mount -t tmpfs -o size=4m p12-nospc "$MNT" || { echo "cannot mount tmpfs"; exit 1; }
umount_small() { umount "$MNT" 2>/dev/null; }
trap 'umount_small; cleanup' EXIT
OUT=$MNT/out.pcapng

start_ehp "$WORK/ehp.log" tls -m pcap -i "$HV" -w "$OUT" || exit 1
udp_gen "$HOST_IP" 9999 40 0 200 >/dev/null &
GEN=$!
BG_PIDS+=("$GEN")
exited() { ! kill -0 "$EHP_PID" 2>/dev/null; }
WAIT_S=40 wait_for exited
if exited; then wait "$EHP_PID"; EHP_RC=$?; else echo "  still running: stopping it"; stop_ehp; EHP_RC=999; fi
kill "$GEN" 2>/dev/null

errlines=$(grep -v -E "^ecapture-hp: (tracing|capturing|still writing|[0-9]+ pkts|[0-9]+ packets (written|encoded before)|[0-9]+ TLS sessions held for keys)|^Packets received" "$WORK/ehp.log")
echo "  error output: $errlines"
check "the capture stops by itself with exit != 0 (rc=$EHP_RC)" test "$EHP_RC" -ne 0 -a "$EHP_RC" -ne 999
check "exactly one error line, naming the file and ENOSPC" \
  bash -c "[[ \$(grep -c . <<<'$errlines') -eq 1 ]] && grep -q 'out.pcapng.*No space left on device' <<<'$errlines'"
check "the summary does not claim the cut packets were written" grep -q "packets encoded before the write error" "$WORK/ehp.log"
check "the file is valid (tshark, tcpdump, capinfos)" pcap_valid "$OUT"
check "the file holds packets ($(pkt_count "$OUT"))" test "$(pkt_count "$OUT")" -gt 1000
check "block walk succeeds to the end of the file" bash -c "$(declare -f pcapng_blocks); pcapng_blocks '$OUT' >/dev/null"
check "no tc filter or clsact left on $HV" no_tc_left "$HV"
finish
