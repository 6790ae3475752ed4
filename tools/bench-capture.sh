#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Capture to disk, side by side: ecapture-hp, dumpcap and tcpdump take turns on the same
# sendmmsg UDP load across a veth pair, each writing its own file on a real disk.
#
#   tools/bench-capture.sh BUILD_DIR [options]
#     --seconds S      traffic per run (default 5)
#     --sizes "64 1400"  frame sizes on the wire (Ethernet+IPv4+UDP+payload)
#     --senders "1 2"  sender thread counts
#     --tools "ecapture-hp dumpcap tcpdump"
#     --rounds N       rounds per configuration; the tool order rotates each round (default 3)
#     --out DIR        where capture files and results go (default BUILD_DIR/bench-capture; keep
#                      it off tmpfs: the disk path is part of what is measured)
#     --mapsize KB     ecapture-hp ring size per CPU (default: its own default, 32 MiB)
#     --keep           keep the capture files
#     --ehp-filter F   ecapture-hp's filter instead of the common one ("" = none), for A/B runs
#     --ehp-args "A"   extra ecapture-hp options (e.g. "--no-direct-io"), for A/B runs
#     --ehp PATH       the ecapture-hp binary (default BUILD_DIR/ecapture-hp), for A/B runs
#
# Topology: netns A (udpgen, N threads) --veth--> netns B (a bound UDP socket that never reads;
# the capture tool, on B's veth, filter "udp dst port 9999"). Every tool sees the same path.
#   delivered = rx_packets of B's veth during the run (what any capture tool could have seen)
#   saved     = packets in the file (capinfos)
#   cpu       = utime+stime of the tool's process from traffic start until it exits (/proc/PID/stat)
#   rss       = max VmRSS sampled every 0.1 s (ecapture-hp: bound = 256 MiB + rings)
#   ns/pkt    = ecapture-hp's TC program cost, run_time_ns/run_cnt from bpf_stats
#               (kernel.bpf_stats_enabled=1 during its runs, restored afterwards)
#   drops     = ecapture-hp's kernel ring reserve failures (its exit line)
# Ratios vs dumpcap are taken within a round (same traffic slot), then the median over rounds.
# Needs root, iproute2, dumpcap, tcpdump, capinfos, bpftool, python3.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
BUILD=${1:?usage: bench-capture.sh BUILD_DIR [options]}
shift
BUILD=$(cd "$BUILD" && pwd)
SECONDS_PER_RUN=5
SIZES="64 1400"
SENDERS="1 2"
TOOLS="ecapture-hp dumpcap tcpdump"
ROUNDS=3
OUT=$BUILD/bench-capture
MAPSIZE=""
KEEP=0
EHP=$BUILD/ecapture-hp
EHP_FILTER=unset
EHP_ARGS=""
while (($#)); do
  case $1 in
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --senders) SENDERS=$2; shift 2 ;;
    --tools) TOOLS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --mapsize) MAPSIZE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --ehp) EHP=$2; shift 2 ;;
    --ehp-filter) EHP_FILTER=$2; shift 2 ;;
    --ehp-args) EHP_ARGS=$2; shift 2 ;;
    *) echo "bench-capture: unknown option $1" >&2; exit 2 ;;
  esac
done
GEN=$BUILD/udpgen
for f in "$EHP" "$GEN"; do
  [[ -x $f ]] || { echo "bench-capture: $f missing (build targets ecapture-hp udpgen)" >&2; exit 2; }
done
need_tools bench-capture ip dumpcap tcpdump capinfos bpftool python3
[[ $(id -u) == 0 ]] || { echo "bench-capture: needs root (netns, TC, bpf_stats)" >&2; exit 2; }

TAG=${EHP_BENCH_TAG:-p10}
NSA=$TAG-bc-a
NSB=$TAG-bc-b
VA=$TAG-bca
VB=$TAG-bcb
IPA=10.214.10.1
IPB=10.214.10.2
PORT=9999
FILTER="udp dst port $PORT"
[[ $EHP_FILTER == unset ]] && EHP_FILTER=$FILTER
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RUN=$(mktemp -d "$OUT/$TAG-run.XXXXXX")
RESULTS=$OUT/results.tsv
STATS_OLD=$(cat /proc/sys/kernel/bpf_stats_enabled)
BG=()

cleanup() {
  stop_bg_and_netns
  echo "$STATS_OLD" >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null
  ((KEEP)) || rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

veth_pair
for ns in "$NSA" "$NSB"; do ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
# Static neighbours: no ARP in the measured window.
MAC_B=$(ip netns exec "$NSB" cat /sys/class/net/"$VB"/address)
MAC_A=$(ip netns exec "$NSA" cat /sys/class/net/"$VA"/address)
ip -n "$NSA" neigh replace $IPB lladdr "$MAC_B" dev "$VA" nud permanent
ip -n "$NSB" neigh replace $IPA lladdr "$MAC_A" dev "$VB" nud permanent

# The receiver: a bound socket that never reads, so datagrams end at the socket (no ICMP
# port-unreachable replies) at little cost.
ip netns exec "$NSB" python3 -c '
import signal, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
signal.pause()' $IPB $PORT >"$RUN/receiver.log" 2>&1 &
BG+=($!)
for _ in $(seq 100); do grep -q ready "$RUN/receiver.log" && break; sleep 0.1; done

rx_packets() { ip netns exec "$NSB" cat /sys/class/net/"$VB"/statistics/rx_packets; }

# ready LOG REGEX: waits up to 20 s for the tool's start line.
wait_ready() {
  local i
  for i in $(seq 200); do grep -qE "$2" "$1" && return 0; sleep 0.1; done
  return 1
}

HZ=$(getconf CLK_TCK)
NCPU=$(nproc)
RING_KB=${MAPSIZE:-32768}
printf 'size\tsenders\tround\ttool\tdelivered\tsaved\tsaved_pct\tcpu_s\tmax_rss_mib\tkernel_ns_per_pkt\tkernel_drops\tsent\n' >"$RESULTS"

# run_one TOOL SIZE SENDERS ROUND
run_one() {
  local tool=$1 size=$2 senders=$3 round=$4
  local base=$RUN/$tool-$size-$senders-$round
  local file=$base.pcapng log=$base.log pid ready
  local payload=$((size - 42))
  case $tool in
    ecapture-hp)
      echo 1 >/proc/sys/kernel/bpf_stats_enabled
      ip netns exec "$NSB" "$EHP" tls -m pcap -i "$VB" -w "$file" ${MAPSIZE:+--mapsize $MAPSIZE} \
        $EHP_ARGS $EHP_FILTER >/dev/null 2>"$log" &
      ready="capturing" ;;
    dumpcap)
      ip netns exec "$NSB" dumpcap -i "$VB" -w "$file" -f "$FILTER" >/dev/null 2>"$log" &
      ready="Capturing on" ;;
    tcpdump)
      file=$base.pcap
      ip netns exec "$NSB" tcpdump -i "$VB" -w "$file" -n $FILTER >/dev/null 2>"$log" &
      ready="listening on" ;;
  esac
  pid=$!
  BG+=("$pid")
  if ! wait_ready "$log" "$ready"; then
    echo "bench-capture: $tool did not start:" >&2; cat "$log" >&2
    kill -INT "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    return 1
  fi
  sampler "$pid" "$base.sample" &
  local spid=$!
  local rx0 rx1 cpu0 sent st0=(0 0) st1=(0 0)
  rx0=$(rx_packets)
  cpu0=$(cpu_ticks "$pid")
  [[ $tool == ecapture-hp ]] && read -r -a st0 <<<"$(prog_stats "$pid")"
  sent=$(ip netns exec "$NSA" "$GEN" -d $IPB -p $PORT -t "$SECONDS_PER_RUN" -s "$payload" -n "$senders" |
         sed -n 's/.*sent=\([0-9]*\).*/\1/p')
  [[ $tool == ecapture-hp ]] && read -r -a st1 <<<"$(prog_stats "$pid")"
  rx1=$(rx_packets)
  kill -INT "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  wait "$spid" 2>/dev/null
  [[ $tool == ecapture-hp ]] && echo 0 >/proc/sys/kernel/bpf_stats_enabled
  local ticks rss
  read -r ticks rss <"$base.sample"
  local saved
  saved=$(capinfos -c -M -T -r "$file" 2>/dev/null | awk -F'\t' '{print $2}')
  [[ -n $saved ]] || saved=0
  local delivered=$((rx1 - rx0))
  local ns_pkt=NA drops=NA
  if [[ $tool == ecapture-hp ]]; then
    local runs=$((st1[1] - st0[1]))
    ((runs > 0)) && ns_pkt=$(((st1[0] - st0[0]) / runs))
    drops=$(sed -n "s/^Packets received\/dropped on interface '[^']*': [0-9]*\/\([0-9]*\)/\1/p" "$log" | head -1)
  fi
  python3 - "$size" "$senders" "$round" "$tool" "$delivered" "$saved" "$((ticks - cpu0))" "$HZ" \
    "$rss" "$ns_pkt" "${drops:-NA}" "${sent:-0}" >>"$RESULTS" <<'PY'
import sys
size, senders, rnd, tool, delivered, saved, ticks, hz, rss, ns, drops, sent = sys.argv[1:]
d, s = int(delivered), int(saved)
pct = 100.0 * s / d if d else 0.0
print("\t".join([size, senders, rnd, tool, delivered, saved, "%.2f" % pct,
                 "%.2f" % (int(ticks) / int(hz)), "%.1f" % (int(rss) / 1024), ns, drops, sent]))
PY
  tail -1 "$RESULTS" | awk -F'\t' '{printf "  %-11s %5s B x%s round %s: delivered %9d saved %9d (%6.2f%%) cpu %5.2f s rss %6.1f MiB ns/pkt %s drops %s\n", $4, $1, $2, $3, $5, $6, $7, $8, $9, $10, $11}'
  ((KEEP)) || rm -f "$file"
}

echo "bench-capture: ${SECONDS_PER_RUN}s per run, sizes [$SIZES], senders [$SENDERS], $ROUNDS rounds, files in $RUN"
read -r -a tools <<<"$TOOLS"
for size in $SIZES; do
  for senders in $SENDERS; do
    for ((r = 1; r <= ROUNDS; r++)); do
      # Rotate the order so no tool always runs first (page cache, thermal, neighbours' load).
      n=${#tools[@]}
      for ((k = 0; k < n; k++)); do
        run_one "${tools[$(((k + r - 1) % n))]}" "$size" "$senders" "$r"
      done
    done
  done
done

python3 - "$RESULTS" "$((NCPU * RING_KB / 1024))" <<'PY'
import csv, statistics as st, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
ring_mib = int(sys.argv[2])
med = lambda xs: st.median(xs) if xs else float("nan")
print("\nbench-capture summary (medians over rounds; ratio = ecapture-hp / dumpcap within a round)")
print("%-5s %-3s %-11s %10s %10s %8s %7s %8s %8s %7s" % ("size", "snd", "tool", "delivered", "saved",
      "saved%", "cpu_s", "rss_MiB", "ns/pkt", "xdump"))
configs = sorted({(int(r["size"]), int(r["senders"])) for r in rows})
for size, snd in configs:
    cr = [r for r in rows if int(r["size"]) == size and int(r["senders"]) == snd]
    for tool in dict.fromkeys(r["tool"] for r in cr):
        tr = [r for r in cr if r["tool"] == tool]
        ratios = []
        for r in tr:
            d = [x for x in cr if x["tool"] == "dumpcap" and x["round"] == r["round"]]
            if d and int(d[0]["saved"]) > 0:
                ratios.append(int(r["saved"]) / int(d[0]["saved"]))
        ns = [int(r["kernel_ns_per_pkt"]) for r in tr if r["kernel_ns_per_pkt"] != "NA"]
        print("%-5d %-3d %-11s %10.0f %10.0f %8.2f %7.2f %8.1f %8s %7s" % (
            size, snd, tool, med([int(r["delivered"]) for r in tr]), med([int(r["saved"]) for r in tr]),
            med([float(r["saved_pct"]) for r in tr]), med([float(r["cpu_s"]) for r in tr]),
            max(float(r["max_rss_mib"]) for r in tr), "%.0f" % med(ns) if ns else "-",
            "%.2fx" % med(ratios) if ratios else "-"))
eh = [r for r in rows if r["tool"] == "ecapture-hp"]
if eh:
    rss = max(float(r["max_rss_mib"]) for r in eh)
    drops = sum(int(r["kernel_drops"]) for r in eh if r["kernel_drops"] not in ("NA", ""))
    print("ecapture-hp: max RSS %.1f MiB vs bound %d MiB (256 + %d MiB of rings); kernel ring drops %d" %
          (rss, 256 + ring_mib, ring_mib, drops))
print("results: %s" % sys.argv[1])
PY
