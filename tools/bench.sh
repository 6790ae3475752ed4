#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# `make bench`: every benchmark, briefly, and one summary. Ratios are taken against a peer
# measured in the same run (this machine is shared; absolute figures drift).
#
#   tools/bench.sh BUILD_DIR [--quick] [--rounds N] [--no-capture] [--no-tls] [--no-gateway] [--repeat N]
#
# 1. Google Benchmark stages (bench/*.cc): encoders, queue handoff, correlator/flow graph,
#    HKDF/ClientHello parser, writer (io_uring O_DIRECT vs buffered vs write(2)).
# 2. Replay vs disk vs eCapture's writer, interleaved per round on the same disk and packets:
#      fio --ioengine=io_uring --direct=1 --rw=write --bs=1M --iodepth=8 (the disk's ceiling)
#      ecapture-hp replay IN --repeat N -w OUT       (the whole userspace pipeline)
#      tools/pcapgo (gopacket pcapgo NgWriter over a 64 KiB bufio, eCapture's writer), with
#      fsync at the end like replay; and without it (page cache only) for reference.
#    IN is real TLS + UDP traffic captured by tools/gen/make-replay-input.sh.
#    Targets: replay >= 90% of fio, >= 4x pcapgo.
# 3. tools/bench-capture.sh (1400 B, 2 senders), tools/bench-tls.sh and tools/bench-gateway.sh
#    (forwarded TLS through a router netns, ecapture-hp vs tcpdump), short.
# Files go under BUILD_DIR (keep it on a real disk, not tmpfs). Needs root for 2.-3.
set -uo pipefail
BUILD=${1:?usage: bench.sh BUILD_DIR [--quick] [--rounds N] [--no-capture] [--no-tls] [--no-gateway] [--repeat N]}
shift
BUILD=$(cd "$BUILD" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROUNDS=3
QUICK=0
CAPTURE=1
TLS=1
GATEWAY=1
REPEAT=""
while (($#)); do
  case $1 in
    --quick) QUICK=1; shift ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --no-capture) CAPTURE=0; shift ;;
    --no-tls) TLS=0; shift ;;
    --no-gateway) GATEWAY=0; shift ;;
    --repeat) REPEAT=$2; shift 2 ;;
    *) echo "bench: unknown option $1" >&2; exit 2 ;;
  esac
done
TAG=${EHP_BENCH_TAG:-p10}
DATA=$BUILD/bench-data
mkdir -p "$DATA"
SUMMARY=$DATA/summary.txt
: >"$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }
FAILED=0

# ---------------------------------------------------------------- 1. Google Benchmark stages
MIN_TIME=0.2
((QUICK)) && MIN_TIME=0.01
say "== stages (Google Benchmark, --benchmark_min_time=$MIN_TIME)"
for b in bench_pcapng bench_queue bench_correlator bench_correlate bench_writer; do
  exe=$BUILD/bench/$b
  if [[ ! -x $exe ]]; then say "  $b: not built (skipped)"; continue; fi
  # The writer benchmark writes EHP_BENCH_WRITER_MB per iteration into DATA (a real disk).
  if ! EHP_BENCH_DIR=$DATA EHP_BENCH_WRITER_MB=$(((QUICK)) && echo 8 || echo 256) \
    "$exe" --benchmark_min_time=$MIN_TIME --benchmark_format=console >"$DATA/$b.txt" 2>&1; then
    say "  $b: FAILED (see $DATA/$b.txt)"; FAILED=1; continue
  fi
  # Name, time and the throughput counters only.
  grep -E '^BM_' "$DATA/$b.txt" | awk '{
    name=$1; rate="";
    for (i = 2; i <= NF; i++) if ($i ~ /(items_per_second|bytes_per_second)=/ || $(i) ~ /\/s$/) rate = rate " " $i;
    printf "  %-52s %10s %-3s %s\n", name, $2, $3, rate }' | tee -a "$SUMMARY"
done

# ---------------------------------------------------------------- 2. replay vs fio vs pcapgo
if [[ $(id -u) != 0 ]]; then
  say "== replay/capture/tls/gateway: need root (skipped)"
  exit $FAILED
fi
say ""
say "== replay vs fio (O_DIRECT io_uring) vs pcapgo (eCapture's writer), $ROUNDS rounds"
GO=$BUILD/pcapgo-writer
if [[ ! -x $GO || $HERE/pcapgo/main.go -nt $GO ]]; then
  bash "$HERE/pcapgo/build.sh" "$GO" || say "  pcapgo writer cannot be built (golang-go + golang-github-google-gopacket-dev)"
fi
# Two real captures: "bulk" (mean ~1.1 KB: HTTP/2 downloads, 1400-B UDP) and "small" (mean
# ~0.45 KB: handshakes, small HTTP/2 responses, 64-B UDP; closer to the mixed TLS packets
# eCapture's 0.84 Mpkt/s figure is quoted for).
for MIX in bulk small; do
IN=$DATA/replay-$MIX.pcap
if [[ ! -s $IN ]]; then
  bash "$HERE/gen/make-replay-input.sh" "$BUILD" "$IN" $(((QUICK)) && echo 1 || echo 3) $MIX | tee -a "$SUMMARY" ||
    { say "  cannot make the replay input"; exit 1; }
fi
say "-- input $MIX"
in_bytes=$(stat -c %s "$IN")
# About 2 GB of output per replay (0.2 GB with --quick): long enough to reach the disk's steady state.
REP=$REPEAT
[[ -n $REP ]] || REP=$(( ( (QUICK ? 200 : 2000) * 1000000 + in_bytes - 1) / in_bytes ))
FIO_MB=$((REP * in_bytes / 1000000))
RES=$DATA/replay-$MIX.tsv
printf 'round\ttool\tseconds\tpackets\tfile_bytes\tfile_MBps\tpkt_per_s\n' >"$RES"
for ((r = 1; r <= ROUNDS; r++)); do
  # Rotate the order each round.
  tools=(fio replay pcapgo pcapgo-nofsync)
  for ((k = 0; k < 4; k++)); do
    t=${tools[$(((k + r - 1) % 4))]}
    out=$DATA/$TAG-bench-$t.out
    case $t in
      fio)
        line=$(fio --name=$TAG-fio --filename="$out" --ioengine=io_uring --direct=1 --rw=write --bs=1M \
                 --iodepth=8 --size=${FIO_MB}M --end_fsync=1 --output-format=terse 2>/dev/null)
        # terse v3: field 48 = write bandwidth KiB/s, 50 = write runtime ms
        kbs=$(echo "$line" | awk -F';' '{print $48}')
        ms=$(echo "$line" | awk -F';' '{print $50}')
        [[ -n $kbs && $kbs != 0 ]] || { say "  fio FAILED"; FAILED=1; continue; }
        awk -v r="$r" -v ms="$ms" -v kbs="$kbs" -v b=$((FIO_MB * 1000000)) \
          'BEGIN {printf "%d\tfio\t%.3f\t0\t%d\t%.1f\t0\n", r, ms / 1000, b, kbs * 1024 / 1e6}' >>"$RES" ;;
      replay)
        line=$("$BUILD/ecapture-hp" replay "$IN" --repeat "$REP" -w "$out" 2>&1 | tail -1)
        python3 - "$r" "$line" "$(stat -c %s "$out" 2>/dev/null || echo 0)" >>"$RES" <<'PY' || FAILED=1
import re, sys
r, line, fb = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = re.match(r"replay: (\d+) packets, (\d+) bytes in ([0-9.]+) s", line)
if not m: sys.exit("replay output: " + line)
p, s = int(m[1]), float(m[3])
print("%s\treplay\t%.3f\t%d\t%d\t%.1f\t%.0f" % (r, s, p, fb, fb / s / 1e6, p / s))
PY
        ;;
      pcapgo|pcapgo-nofsync)
        [[ -x $GO ]] || continue
        line=$("$GO" --repeat "$REP" $([[ $t == pcapgo-nofsync ]] && echo --no-fsync) -w "$out" "$IN" 2>&1 | tail -1)
        python3 - "$r" "$t" "$line" >>"$RES" <<'PY' || FAILED=1
import re, sys
r, t, line = sys.argv[1:]
m = re.match(r"pcapgo: (\d+) packets, (\d+) bytes in ([0-9.]+) s, .* (\d+) file bytes", line)
if not m: sys.exit("pcapgo output: " + line)
p, s, fb = int(m[1]), float(m[3]), int(m[4])
print("%s\t%s\t%.3f\t%d\t%d\t%.1f\t%.0f" % (r, t, s, p, fb, fb / s / 1e6, p / s))
PY
        ;;
    esac
    rm -f "$out"
    tail -1 "$RES" | awk -F'\t' '$1 ~ /^[0-9]/ {printf "  round %s %-15s %8.3f s %8.1f MB/s to disk %10s pkt/s\n", $1, $2, $3, $6, $7}'
  done
done
python3 - "$RES" "$IN" "$REP" <<'PY' | tee -a "$SUMMARY"
import csv, statistics as st, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
by = lambda t: {r["round"]: r for r in rows if r["tool"] == t}
fio, rep, go, gon = by("fio"), by("replay"), by("pcapgo"), by("pcapgo-nofsync")
def med_ratio(a, b, f):
    xs = [f(a[k]) / f(b[k]) for k in a if k in b and f(b[k]) > 0]
    return st.median(xs) if xs else float("nan")
mbps = lambda r: float(r["file_MBps"])
pps = lambda r: float(r["pkt_per_s"])
print("input %s x %s" % (sys.argv[2], sys.argv[3]))
for name, d in (("fio", fio), ("replay", rep), ("pcapgo", go), ("pcapgo-nofsync", gon)):
    if d:
        print("  %-15s median %8.1f MB/s to disk %12.0f pkt/s" % (name, st.median(map(mbps, d.values())),
              st.median(map(pps, d.values()))))
if rep and fio:
    x = med_ratio(rep, fio, mbps)
    print("  replay / fio            %.2f  (target >= 0.90: %s)" % (x, "MET" if x >= 0.9 else "NOT MET"))
if rep and go:
    x = med_ratio(rep, go, pps)
    print("  replay / pcapgo         %.2fx (target >= 4x: %s)" % (x, "MET" if x >= 4 else "NOT MET"))
if rep and gon:
    print("  replay / pcapgo-nofsync %.2fx (pcapgo into the page cache, no fsync)" % med_ratio(rep, gon, pps))
PY
done

# ---------------------------------------------------------------- 3. live capture and TLS
# run_part TITLE SCRIPT TAG ARGS...: tools/SCRIPT.sh BUILD ARGS, its output in DATA/TAG.txt and
# its "SCRIPT summary" section in the summary; a missing summary fails the run.
run_part() {
  local title=$1 script=$2 tag=$3
  shift 3
  say ""
  say "== $title (tools/$script.sh)"
  bash "$HERE/$script.sh" "$BUILD" "$@" 2>&1 | tee "$DATA/$tag.txt"
  sed -n "/^$script summary/,\$p" "$DATA/$tag.txt" >>"$SUMMARY"
  grep -q "^$script summary" "$DATA/$tag.txt" || FAILED=1
}
if ((CAPTURE)); then
  if ((QUICK)); then
    run_part "capture to disk" bench-capture capture --seconds 1 --sizes 1400 --senders 2 --rounds 1
  else
    run_part "capture to disk" bench-capture capture --seconds 3 --sizes "64 1400" --senders "1 2" --rounds "$ROUNDS"
  fi
fi
if ((TLS)); then
  run_part "TLS server overhead" bench-tls tls --rounds $(((QUICK)) && echo 1 || echo "$ROUNDS") \
    --seconds $(((QUICK)) && echo 1 || echo 3)
fi
if ((GATEWAY)); then
  run_part "gateway: forwarded TLS, ecapture-hp vs tcpdump" bench-gateway gateway \
    --rounds $(((QUICK)) && echo 1 || echo "$ROUNDS") --seconds $(((QUICK)) && echo 2 || echo 5)
fi
echo ""
echo "===== summary ($SUMMARY)"
cat "$SUMMARY"
exit $FAILED
