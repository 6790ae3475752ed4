#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Slow disk: the output (-w -) goes through a pipe whose reader takes 1 MB/s while a UDP flood
# produces far more. Backpressure must be counted (consumer stalls / ring drops in the stats,
# the drops also in the ISB), memory must stay bounded (RSS sampled from /proc every 0.5 s:
# it plateaus instead of growing with the backlog; 4 MiB rings keep the test short), and once
# the reader speeds up everything the engine took is written and the file is valid.
TAG=slow
source "$(dirname "$0")/faults_lib.sh"
setup_veth 125
OUT=$WORK/out.pcapng
cat >"$WORK/slow_reader.py" <<'PY'
import os, sys, time
out, rate, fast_flag = open(sys.argv[1], "wb"), int(sys.argv[2]), sys.argv[3]
inp = sys.stdin.buffer
chunk = 16384
while True:
    fast = os.path.exists(fast_flag)
    b = inp.read1(1 << 20) if fast else inp.read1(chunk)
    if not b:
        break
    out.write(b)
    until = time.monotonic() + (0 if fast else len(b) / rate)
    while time.monotonic() < until and not os.path.exists(fast_flag):
        time.sleep(0.05)
out.close()
PY
"$EHP" tls -m pcap -i "$HV" --mapsize 4096 -w - 2>"$WORK/ehp.log" > >(python3 "$WORK/slow_reader.py" "$OUT" 1000000 "$WORK/fast"; touch "$WORK/reader_done") &
EHP_PID=$!
BG_PIDS+=("$EHP_PID")
wait_for grep -q capturing "$WORK/ehp.log" || { cat "$WORK/ehp.log"; exit 1; }
base_kb=$(rss_kb "$EHP_PID")
udp_gen "$HOST_IP" 9999 60 0 64 >/dev/null &
GEN=$!
BG_PIDS+=("$GEN")
# Sample RSS every 0.5 s for 12 s of backlog.
: >"$WORK/rss.log"
for i in $(seq 1 24); do rss_kb "$EHP_PID" >>"$WORK/rss.log"; sleep 0.5; done   # sampling period
echo "  phase 1 loaded at $SECONDS s"
backpressure_seen() { grep -qE "queue=[1-9]|ring=[1-9]" "$WORK/ehp.log"; }
WAIT_S=20 wait_for backpressure_seen
kill "$GEN" 2>/dev/null
touch "$WORK/fast"
kill -INT "$EHP_PID"
wait "$EHP_PID"; EHP_RC=$?
wait_for test -e "$WORK/reader_done"
echo "  phase 1 drained at $SECONDS s"

grep -E "pkts|written|received" "$WORK/ehp.log" | tail -3
max_kb=$(sort -n "$WORK/rss.log" | tail -1)
h1=$(head -12 "$WORK/rss.log" | sort -n | tail -1)
h2=$(tail -12 "$WORK/rss.log" | sort -n | tail -1)
echo "  RSS KiB: at start $base_kb, max $max_kb, max first 6 s $h1, max last 6 s $h2"
check "exit 0 after the slow period" test "$EHP_RC" -eq 0
check "backpressure is counted in the stats line (consumer stalls or ring drops)" backpressure_seen
ringdrop=$(summary_field "$WORK/ehp.log" "Packets received/dropped on interface '[^']*': [0-9]+/([0-9]+)")
written=$(summary_field "$WORK/ehp.log" "ecapture-hp: ([0-9]+) packets written")
recv=$(summary_field "$WORK/ehp.log" "Packets received/dropped on interface '[^']*': ([0-9]+)/")
check "memory bounded: RSS growth under backlog <= 160 MiB ($(( (max_kb - base_kb) / 1024 )) MiB)" \
  test $((max_kb - base_kb)) -le $((160 * 1024))
check "memory plateaus: last 6 s no more than 16 MiB above the first 6 s" test "$h2" -le $((h1 + 16384))
check "the file is valid (tshark, tcpdump, capinfos)" pcap_valid "$OUT"
check "every packet taken from the rings was written (${recv:-?} == ${written:-?})" test "${recv:-x}" = "${written:-y}"
check "the file holds them all ($(pkt_count "$OUT"))" test "$(pkt_count "$OUT")" = "${written:-y}"
check "the ISB carries the ring drops as ifdrop (${ringdrop:-?})" \
  bash -c "$(declare -f pcapng_blocks); pcapng_blocks '$OUT' | grep -q 'isb if=0 ifrecv=$written ifdrop=$ringdrop '"
check "nothing left on $HV" no_tc_left "$HV"

# A stuck output: the first SIGINT starts a drain that cannot finish; a second one ends the
# process at once (exit 130, one line), and the host is already clean.
rm -f "$WORK/fast" "$WORK/reader_done"
"$EHP" tls -m pcap -i "$HV" --mapsize 4096 -w - 2>"$WORK/ehp2.log" > >(python3 "$WORK/slow_reader.py" "$WORK/stuck.pcapng" 1000 "$WORK/fast"; touch "$WORK/reader_done") &
EHP_PID=$!
BG_PIDS+=("$EHP_PID")
wait_for grep -q capturing "$WORK/ehp2.log" || { cat "$WORK/ehp2.log"; exit 1; }
(udp_gen "$HOST_IP" 9999 8 0 64 >/dev/null)
kill -INT "$EHP_PID"
draining() { tc filter show dev "$HV" ingress | grep -q . && return 1; kill -0 "$EHP_PID"; }
WAIT_S=10 wait_for draining
check "stuck output: still draining after the first SIGINT, filters already removed" draining
t0=$(date +%s%N)
kill -INT "$EHP_PID"
wait "$EHP_PID"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
touch "$WORK/fast"
check "second SIGINT: exit 130 within 2 s (rc=$rc, ${ms} ms)" test "$rc" -eq 130 -a "$ms" -le 2000
check "second SIGINT: says so in one line" grep -q "second signal: exiting without writing the rest" "$WORK/ehp2.log"
check "nothing left on $HV after the second signal" no_tc_left "$HV"
wait_for test -e "$WORK/reader_done"
echo "  phase 2 done at $SECONDS s"
finish
