#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 5, streaming: `ecapture-hp tls -m pcap -i IF -w - | tshark -i - -Y http` shows the decrypted
# requests while the capture runs (the DSB ordering holds in a pipe), each request shows up
# promptly (the writer's stream flush interval), and a reader that goes away stops ecapture-hp
# cleanly with one clear line and no tc hook left behind.
TAG=p11strm
source "$(dirname "$0")/operator_common.sh"
setup_veth 111
make_cert
start_py_https 8443 || { echo "python https failed"; exit 1; }

# 1. Live view through a pipe. tshark prints each decrypted request URI as it arrives (-l).
FIFO_OUT=$WORK/tshark.out
( "$EHP" tls -m pcap -i "$HV" -w - tcp port 8443 2>"$WORK/ehp.log" |
    tshark -l -i - -Y http.request -T fields -e http.request.uri >"$FIFO_OUT" 2>"$WORK/tshark.log" ) &
PIPE_PID=$!
BG_PIDS+=($PIPE_PID)
wait_for grep -q capturing "$WORK/ehp.log" || { cat "$WORK/ehp.log"; exit 1; }
EHP_PID=$(pgrep -P $PIPE_PID -x ecapture-hp || pgrep -f "^$EHP tls -m pcap -i $HV -w -")
seen_uri() { grep -qxF "$1" "$FIFO_OUT"; }
max_latency_ms=0   # over requests 2..5
first_latency_ms=0
n_ok=0
for i in 1 2 3 4 5; do
  uri=/stream-$i
  curl -sk --max-time 10 -o /dev/null "https://$PEER_IP:8443$uri" || echo "curl $uri failed"
  t0=$(date +%s%N)
  if WAIT_S=10 wait_for seen_uri "$uri"; then
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    echo "  $uri: ${ms} ms from the end of curl to tshark's output"
    if ((i == 1)); then first_latency_ms=$ms; elif ((ms > max_latency_ms)); then max_latency_ms=$ms; fi
    n_ok=$((n_ok + 1))
  else
    echo "  $uri never showed in tshark's live output"
  fi
done
# Requests over one keep-alive connection, with pauses, plus parallel one-shot sessions.
keepalive_client "$PEER_IP" 8443 ka 4 0.3 >"$WORK/ka.txt"
for i in $(seq 1 8); do curl -sk --max-time 10 -o /dev/null "https://$PEER_IP:8443/par$i" & done
wait $(jobs -p | grep -vxF -e "$PIPE_PID" ${BG_PIDS[@]/#/-e }) 2>/dev/null
all_seen() { for u in /ka-0 /ka-1 /ka-2 /ka-3 /par{1..8}; do seen_uri "$u" || return 1; done; }
WAIT_S=10 wait_for all_seen
check "every request shows decrypted in the live tshark view (5/5 sequential: $n_ok)" test "$n_ok" -eq 5
check "keep-alive and parallel requests show decrypted live" all_seen
# The writer flushes pipes every 100 ms; the rest is tshark's own pipeline (dumpcap child, update
# interval). The first session after start-up may wait for its keys up to --hold-ms (3000 ms).
check "requests 2-5 reach tshark within 1500 ms (worst ${max_latency_ms} ms)" test "$max_latency_ms" -le 1500
check "the first request within --hold-ms + 1500 ms (${first_latency_ms} ms)" test "$first_latency_ms" -le 4500
kill -INT "$EHP_PID" 2>/dev/null
wait $PIPE_PID
check "ecapture-hp printed its per-interface summary" grep -q "Packets received/dropped on interface '$HV'" "$WORK/ehp.log"

# 2. The reader goes away: ecapture-hp must stop by itself with one clear line, non-zero exit.
cat >"$WORK/reader.py" <<'PY'
import sys
sys.stdin.buffer.read(4096)   # the section header and a little more, then close the pipe
PY
( "$EHP" tls -m pcap -i "$HV" -w - tcp port 8443 2>"$WORK/ehp2.log"; echo $? >"$WORK/ehp2.rc" ) |
  python3 "$WORK/reader.py" &
R_PID=$!
BG_PIDS+=($R_PID)
wait_for grep -q capturing "$WORK/ehp2.log" || { cat "$WORK/ehp2.log"; exit 1; }
# Traffic until the reader has closed and ecapture-hp has noticed (each write after the close fails).
gen() { curl -sk --max-time 5 -o /dev/null "https://$PEER_IP:8443/after-close" ; test -s "$WORK/ehp2.rc"; }
WAIT_S=30 wait_for gen
rc=$(cat "$WORK/ehp2.rc" 2>/dev/null)
echo "  exit code after the reader closed: ${rc:-none}; stderr:"; sed 's/^/    /' "$WORK/ehp2.log"
check "ecapture-hp stops by itself when the reader closes" test -n "$rc"
check "... with a non-zero exit" test "${rc:-0}" -ne 0
check "... and one clear line about the closed output" bash -c "grep -c 'closed' '$WORK/ehp2.log' | grep -qx 1"
check "... and no crash/abort message" bash -c "! grep -qiE 'abort|terminate|core dumped|Segmentation' '$WORK/ehp2.log'"

# 3. The reader goes away on a quiet link (no packet and, with -p 1, no key to write):
# ecapture-hp notices by itself.
( "$EHP" tls -m pcap -i "$HV" -p 1 -w - tcp port 9999 2>"$WORK/ehp3.log"; echo $? >"$WORK/ehp3.rc" ) |
  python3 -c 'import sys; sys.stdin.buffer.read(28)' &
BG_PIDS+=($!)
WAIT_S=20 wait_for test -s "$WORK/ehp3.rc"
rc3=$(cat "$WORK/ehp3.rc" 2>/dev/null)
check "on a quiet link a closed reader still stops ecapture-hp (rc=${rc3:-still running})" test -n "$rc3" -a "${rc3:-0}" -ne 0
check "... with the same clear line" grep -q "closed it (broken pipe)" "$WORK/ehp3.log"
check "no tc filter left on $HV" test -z "$(tc filter show dev "$HV" ingress)$(tc filter show dev "$HV" egress)"
finish
