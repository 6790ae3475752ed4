#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# A busy gateway (issue 15): forwarded TLS bulk traffic through a router namespace, captured on
# one of the router's interfaces by ecapture-hp and by tcpdump in turn (and by nothing, for the
# forwarding's own speed), same traffic length, same interface, same filter.
#
#   tools/bench-gateway.sh BUILD_DIR [options]
#     --seconds S      traffic per run (default 10)
#     --rounds N       rounds; the order of the variants rotates each round (default 3)
#     --out DIR        capture files and results.tsv (default BUILD_DIR/bench-gateway; keep it off
#                      tmpfs: the disk path is part of what is measured)
#     --tools "none ecapture-hp tcpdump"   the variants (none = no capture: the forwarding alone)
#     --conns C        h2load connections (default 4), one stream each
#     --file-mib M     size of the file downloaded over and over (default 16)
#     --filter F       the capture filter of both tools (default "tcp port 9443"; "" = none)
#     --buffer-kib K   tcpdump -B (default: ecapture-hp's ring total, nproc x 32 MiB)
#     --keep           keep the capture files
#     --ehp PATH       the ecapture-hp binary (default BUILD_DIR/ecapture-hp); --ehp-args "A": extra options
#
# Topology: netns client (h2load) --veth-- netns router (ip_forward=1) --veth-- netns server
# (nghttpd, HTTP/2 over TLS 1.3). Both capture tools run in the router netns on its server-side
# veth. gso_max_segs 1 on every veth: TCP segments are MTU-sized as on a NIC.
# Gateway, not endpoint: on a real gateway the TLS endpoints are other hosts, so no uprobe of
# ecapture-hp ever fires for them. Here they are processes on this host using the system
# libssl, which ecapture-hp would trace (it would hold and decrypt their sessions: an endpoint
# capture, not a gateway). So ecapture-hp is given `--libssl` on a private copy of that libssl
# that nothing maps: its TLS side is up (uprobes attached, the hold-back policy asked for every
# ClientHello), and the forwarded sessions are, as on a gateway, ones no key can come for.
# Measured per run:
#   delivered  = rx_packets + tx_packets of the router's server-side veth during the run
#   saved      = packets in the file (capinfos -c); saved % = saved / delivered
#   received   = what the tool says it received (ecapture-hp: "Packets received/dropped on
#                interface"; tcpdump: "received by filter"): received - saved = taken off the
#                interface but never written
#   drops      = the tool's own count (ecapture-hp: kernel ring reserve failures; tcpdump:
#                "dropped by kernel")
#   cpu        = utime+stime of the tool's process from traffic start until it exits
#   rss        = max VmRSS sampled every 0.1 s
#   fwd MB/s   = rx_bytes of that veth (server -> client data, as forwarded) / h2load's wall time
#   h2load MB/s = h2load's own figure (completed responses only: it moves in steps of a file)
#   host busy  = share of all CPUs not idle during the run (/proc/stat: every process, softirqs,
#                and other users of this machine)
#   order      = capinfos -o (strict time order); ecapture-hp: sessions held / not held, packets
#                written behind a later one (its exit summary)
#   ns/pkt     = ecapture-hp's TC program cost, run_time_ns / run_cnt (bpf_stats during its runs)
# Ratios ecapture-hp / tcpdump are taken within a round, then the median over rounds.
# Needs root, iproute2, nghttpd, h2load, openssl, tcpdump, capinfos, bpftool, python3.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
BUILD=${1:?usage: bench-gateway.sh BUILD_DIR [--seconds S] [--rounds N] [--out DIR]}
shift
BUILD=$(cd "$BUILD" && pwd)
SECS=10
ROUNDS=3
OUT=$BUILD/bench-gateway
TOOLS="none ecapture-hp tcpdump"
CONNS=4
FILE_MIB=16
PORT=9443
FILTER="tcp port $PORT"
BUFFER_KIB=""
KEEP=0
EHP=$BUILD/ecapture-hp
EHP_ARGS=""
while (($#)); do
  case $1 in
    --seconds) SECS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --tools) TOOLS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --file-mib) FILE_MIB=$2; shift 2 ;;
    --filter) FILTER=$2; shift 2 ;;
    --buffer-kib) BUFFER_KIB=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --ehp) EHP=$2; shift 2 ;;
    --ehp-args) EHP_ARGS=$2; shift 2 ;;
    *) echo "bench-gateway: unknown option $1" >&2; exit 2 ;;
  esac
done
for v in "$SECS" "$ROUNDS" "$CONNS" "$FILE_MIB" ${BUFFER_KIB:+"$BUFFER_KIB"}; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "bench-gateway: '$v' is not a positive whole number" >&2; exit 2; }
done
for t in $TOOLS; do
  [[ $t == none || $t == ecapture-hp || $t == tcpdump ]] ||
    { echo "bench-gateway: unknown tool $t (none, ecapture-hp, tcpdump)" >&2; exit 2; }
done
[[ -x $EHP ]] || { echo "bench-gateway: $EHP missing (build target ecapture-hp)" >&2; exit 2; }
need_tools bench-gateway ip nghttpd h2load openssl tcpdump capinfos bpftool python3
[[ $(id -u) == 0 ]] || { echo "bench-gateway: needs root (netns, TC, bpf_stats)" >&2; exit 2; }
NCPU=$(nproc)
[[ -n $BUFFER_KIB ]] || BUFFER_KIB=$((NCPU * 32768))

TAG=${EHP_BENCH_TAG:-p10}
NC=$TAG-bgw-c        # client netns
NR=$TAG-bgw-r        # router netns
NSV=$TAG-bgw-s       # server netns
RC=$TAG-bgwc         # router's client-side veth (peer ${RC}0 in $NC)
RS=$TAG-bgws         # router's server-side veth (peer ${RS}0 in $NSV): the captured interface
IP_RC=10.214.13.1 IP_C=10.214.13.2
IP_RS=10.214.14.1 IP_S=10.214.14.2
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RUN=$(mktemp -d "$OUT/$TAG-run.XXXXXX")
RESULTS=$OUT/results.tsv
STATS_OLD=$(cat /proc/sys/kernel/bpf_stats_enabled)
BG=()
TOOL_PID=""

cleanup() {
  [[ -n $TOOL_PID ]] && kill -INT "$TOOL_PID" 2>/dev/null
  local p
  for p in "${BG[@]:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  for p in "$NC" "$NR" "$NSV"; do ip netns del "$p" 2>/dev/null; done
  echo "$STATS_OLD" >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null
  ((KEEP)) || rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- topology
for n in "$NC" "$NR" "$NSV"; do
  ip netns del "$n" 2>/dev/null
  ip netns add "$n" || exit 1
  ip -n "$n" link set lo up
  ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
ip -n "$NR" link add "$RC" type veth peer name "${RC}0" netns "$NC" || exit 1
ip -n "$NR" link add "$RS" type veth peer name "${RS}0" netns "$NSV" || exit 1
ip -n "$NR" addr add $IP_RC/24 dev "$RC"
ip -n "$NR" addr add $IP_RS/24 dev "$RS"
ip -n "$NC" addr add $IP_C/24 dev "${RC}0"
ip -n "$NSV" addr add $IP_S/24 dev "${RS}0"
ip -n "$NR" link set "$RC" gso_max_segs 1 up
ip -n "$NR" link set "$RS" gso_max_segs 1 up
ip -n "$NC" link set "${RC}0" gso_max_segs 1 up
ip -n "$NSV" link set "${RS}0" gso_max_segs 1 up
ip netns exec "$NR" sysctl -qw net.ipv4.ip_forward=1
ip -n "$NC" route add default via $IP_RC
ip -n "$NSV" route add default via $IP_RS
# Static neighbours everywhere: no ARP in a measured window (and none in the files).
mac() { ip netns exec "$1" cat /sys/class/net/"$2"/address; }
ip -n "$NC" neigh replace $IP_RC lladdr "$(mac "$NR" "$RC")" dev "${RC}0" nud permanent
ip -n "$NR" neigh replace $IP_C lladdr "$(mac "$NC" "${RC}0")" dev "$RC" nud permanent
ip -n "$NSV" neigh replace $IP_RS lladdr "$(mac "$NR" "$RS")" dev "${RS}0" nud permanent
ip -n "$NR" neigh replace $IP_S lladdr "$(mac "$NSV" "${RS}0")" dev "$RS" nud permanent
ip netns exec "$NC" ping -c1 -W2 $IP_S >/dev/null || { echo "bench-gateway: no route through the router" >&2; exit 1; }

# ---------------------------------------------------------------- server, and ecapture-hp's libssl
self_signed_cert "$RUN" || exit 1
mkdir -p "$RUN/www"
head -c $((FILE_MIB << 20)) /dev/urandom >"$RUN/www/big"
ip netns exec "$NSV" nghttpd -d "$RUN/www" $PORT "$RUN/key.pem" "$RUN/cert.pem" >/dev/null 2>&1 &
BG+=($!)
wait_for sh -c "ip netns exec $NSV ss -Hltn 'sport = :$PORT' | grep -q LISTEN" ||
  { echo "bench-gateway: nghttpd did not start" >&2; exit 1; }
# The libssl the endpoints use, copied: ecapture-hp traces the copy, which nothing maps (see top).
SYS_SSL=$(ldd "$(command -v nghttpd)" | awk '/libssl\.so/ {print $3; exit}')
[[ -f $SYS_SSL ]] || { echo "bench-gateway: cannot find the libssl nghttpd uses" >&2; exit 2; }
cp "$SYS_SSL" "$RUN/libssl-gateway.so" || exit 1
URL="https://$IP_S:$PORT/big"

stat_of() { ip netns exec "$NR" cat /sys/class/net/"$RS"/statistics/"$1"; }
# counters: "rx_packets tx_packets rx_bytes busy_ticks all_ticks" of the captured interface
# and of the host's CPUs (idle + iowait count as not busy).
counters() {
  echo "$(stat_of rx_packets) $(stat_of tx_packets) $(stat_of rx_bytes)" \
    "$(awk '/^cpu / {t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t}' /proc/stat)"
}

# One discarded short download first: the server's first responses (page cache, TLS set-up).
ip netns exec "$NC" h2load -D 1 -c "$CONNS" -m 1 "$URL" >/dev/null 2>&1

# time_order FILE: "K S" = K packets with a timestamp older than one before them in the file,
# S = the largest such step back in seconds. Reads pcap (us or ns) and pcapng (EPBs, if_tsresol
# per interface) block by block: timestamps only, the file is never loaded whole.
time_order() {
  python3 - "$1" <<'PY'
import mmap, struct, sys
with open(sys.argv[1], "rb") as f:
    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
size, off, mx, k, worst = len(m), 0, 0, 0, 0
magic = struct.unpack_from("<I", m, 0)[0] if size >= 4 else 0
def see(ts):
    global mx, k, worst
    if ts < mx:
        k += 1
        worst = max(worst, mx - ts)
    else:
        mx = ts
if magic == 0x0A0D0D0A:
    res = []
    while off + 12 <= size:
        btype, blen = struct.unpack_from("<II", m, off)
        if blen < 12 or off + blen > size:
            break
        if btype == 0x0A0D0D0A:
            res = []
        elif btype == 1:
            r, o = 6, off + 16
            while o + 4 <= off + blen - 4:
                code, olen = struct.unpack_from("<HH", m, o)
                if code == 0:
                    break
                if code == 9:
                    r = m[o + 4]
                o += 4 + ((olen + 3) & ~3)
            res.append(r)
        elif btype == 6:
            ifid, hi, lo = struct.unpack_from("<III", m, off + 8)
            r = res[ifid] if ifid < len(res) else 6
            ts = (hi << 32) | lo
            see(ts * 10 ** (9 - r) if r <= 9 else ts)
        off += blen
elif magic in (0xA1B2C3D4, 0xA1B23C4D):
    mul = 1 if magic == 0xA1B23C4D else 1000
    off = 24
    while off + 16 <= size:
        sec, frac, incl = struct.unpack_from("<III", m, off)
        see(sec * 10**9 + frac * mul)
        off += 16 + incl
print(k, "%.6f" % (worst / 1e9))
PY
}

HZ=$(getconf CLK_TCK)
printf 'round\ttool\tseconds\tdelivered\tsaved\tsaved_pct\treceived\tdrops\tcpu_s\tmax_rss_mib\tfwd_MBps\th2load_MBps\treqs_done\tstrict_order\tout_of_order\tmax_step_us\theld\tnot_held\tehp_out_of_order\tkernel_ns_per_pkt\thost_busy_pct\n' >"$RESULTS"

# run_one TOOL ROUND
run_one() {
  local tool=$1 round=$2
  local base=$RUN/$tool-$round
  local file=$base.pcapng log=$base.log pid="" spid="" ready=""
  case $tool in
    ecapture-hp)
      echo 1 >/proc/sys/kernel/bpf_stats_enabled
      ip netns exec "$NR" "$EHP" tls -m pcap --libssl "$RUN/libssl-gateway.so" -i "$RS" -w "$file" \
        $EHP_ARGS $FILTER >/dev/null 2>"$log" &
      ready="capturing" ;;
    tcpdump)
      file=$base.pcap
      ip netns exec "$NR" tcpdump -i "$RS" -w "$file" -n -s 0 -B "$BUFFER_KIB" $FILTER >/dev/null 2>"$log" &
      ready="listening on" ;;
    none) : >"$log" ;;
  esac
  if [[ $tool != none ]]; then
    pid=$!
    TOOL_PID=$pid
    if ! wait_for grep -q "$ready" "$log"; then
      echo "bench-gateway: $tool did not start:" >&2; cat "$log" >&2
      kill -INT "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; TOOL_PID=""
      return 1
    fi
    sampler "$pid" "$base.sample" &
    spid=$!
  fi
  local c0 c1 cpu0=0 st0=(0 0) st1=(0 0) t0 t1
  read -r -a c0 <<<"$(counters)"
  [[ -n $pid ]] && cpu0=$(cpu_ticks "$pid")
  [[ $tool == ecapture-hp ]] && read -r -a st0 <<<"$(prog_stats "$pid")"
  t0=$(date +%s.%N)
  ip netns exec "$NC" h2load -D "$SECS" -c "$CONNS" -m 1 "$URL" >"$base.h2load" 2>&1
  t1=$(date +%s.%N)
  sleep 0.3 # the last FIN/ACKs
  read -r -a c1 <<<"$(counters)"
  [[ $tool == ecapture-hp ]] && read -r -a st1 <<<"$(prog_stats "$pid")"
  local ticks=0 rss=0 saved=0 order=NA drops=NA received=NA ns_pkt=NA ooo=NA step=NA
  if [[ -n $pid ]]; then
    kill -INT "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    TOOL_PID=""
    wait "$spid" 2>/dev/null
    read -r ticks rss <"$base.sample"
    saved=$(capinfos -c -M -T -r "$file" 2>/dev/null | awk -F'\t' '{print $2}')
    order=$(capinfos -o -T -r "$file" 2>/dev/null | awk -F'\t' '{print $2}')
    read -r ooo step < <(time_order "$file")
  fi
  case $tool in
    ecapture-hp)
      echo 0 >/proc/sys/kernel/bpf_stats_enabled
      local runs=$((st1[1] - st0[1]))
      ((runs > 0)) && ns_pkt=$(((st1[0] - st0[0]) / runs))
      drops=$(sed -n "s/^Packets received\/dropped on interface '[^']*': [0-9]*\/\([0-9]*\)/\1/p" "$log" | head -1)
      received=$(sed -n "s/^Packets received\/dropped on interface '[^']*': \([0-9]*\)\/.*/\1/p" "$log" | head -1) ;;
    tcpdump)
      drops=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel/\1/p' "$log" | head -1)
      received=$(sed -n 's/^\([0-9]*\) packets\{0,1\} received by filter/\1/p' "$log" | head -1) ;;
  esac
  # ecapture-hp's own account: "ecapture-hp: H TLS sessions held for keys, N not held (...);
  # time order: K packets written behind a later one, largest step back S s"
  local held=NA not_held=NA own_ooo=NA
  if [[ $tool == ecapture-hp ]]; then
    read -r held not_held own_ooo < <(sed -n 's/^ecapture-hp: \([0-9]*\) TLS sessions held for keys, \([0-9]*\) not held.*time order: \([0-9]*\) packets written behind.*/\1 \2 \3/p' "$log")
    [[ -n $held ]] || { echo "bench-gateway: no held/not held line from ecapture-hp:" >&2; tail -5 "$log" >&2; }
  fi
  python3 - "$round" "$tool" "$SECS" "$((c1[0] - c0[0] + c1[1] - c0[1]))" "${saved:-0}" "${received:-NA}" "${drops:-NA}" \
    "$((ticks - cpu0))" "$HZ" "$rss" "$((c1[2] - c0[2]))" "$t0" "$t1" "$base.h2load" "${order:-NA}" \
    "${ooo:-NA}" "${step:-NA}" "${held:-NA}" "${not_held:-NA}" "${own_ooo:-NA}" "$ns_pkt" "$(((c1[3] - c0[3]) * 1000 / (c1[4] - c0[4] + 1)))" >>"$RESULTS" <<'PY'
import re, sys
(rnd, tool, secs, delivered, saved, received, drops, ticks, hz, rss, rx_bytes, t0, t1, h2log, order,
 ooo, step, held, not_held, own_ooo, ns, busy) = sys.argv[1:]
d, s = int(delivered), int(saved)
none = tool == "none"
pct = "NA" if none else "%.2f" % (100.0 * s / d if d else 0.0)
fwd = int(rx_bytes) / (float(t1) - float(t0)) / 1e6
text = open(h2log, errors="replace").read()
m = re.search(r"^finished in [0-9.]+m?s, [0-9.]+ req/s, ([0-9.]+)([KMG]?)B/s", text, re.M)
h2 = float(m[1]) * {"": 1e-6, "K": 1e-3, "M": 1.0, "G": 1e3}[m[2]] if m else 0.0
m = re.search(r"^requests: .* (\d+) succeeded", text, re.M)
done = m[1] if m else "0"
order = {"True": "yes", "False": "NO"}.get(order, order)
print("\t".join([rnd, tool, secs, delivered, "NA" if none else saved, pct, received, drops,
                 "NA" if none else "%.2f" % (int(ticks) / int(hz)), "NA" if none else "%.1f" % (int(rss) / 1024),
                 "%.1f" % fwd, "%.1f" % h2, done, order, ooo,
                 step if step == "NA" else "%.1f" % (float(step) * 1e6), held, not_held, own_ooo, ns,
                 "%.1f" % (int(busy) / 10)]))
PY
  tail -1 "$RESULTS" | awk -F'\t' '{printf "  round %s %-11s delivered %8d saved %8s (%6s%%) received %8s drops %-3s cpu %5s s rss %6s MiB fwd %6.1f MB/s (h2load %6.1f, %s done) host busy %s%% in order %s (%s back, max %s us)%s\n", $1, $2, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $21, $14, $15, $16, ($2 == "ecapture-hp" ? sprintf("; TLS sessions held %s, not held %s", $17, $18) : "")}'
  ((KEEP)) || rm -f "$file"
}

read -r -a tools <<<"$TOOLS"
echo "bench-gateway: ${SECS}s per run, $ROUNDS rounds, variants [${tools[*]}], h2load -c $CONNS -m 1 of a ${FILE_MIB} MiB file," \
  "capture on $NR/$RS, filter \"$FILTER\", tcpdump -B $BUFFER_KIB; files in $RUN"
n=${#tools[@]}
for ((r = 1; r <= ROUNDS; r++)); do
  # Rotate the order so no variant always runs first.
  for ((k = 0; k < n; k++)); do
    run_one "${tools[$(((k + r - 1) % n))]}" "$r"
  done
done

python3 - "$RESULTS" "$NCPU" <<'PY'
import csv, statistics as st, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
med = lambda xs: st.median(xs) if xs else float("nan")
num = lambda r, k: float(r[k]) if r[k] not in ("NA", "") else None
col = lambda rs, k: [v for v in (num(r, k) for r in rs) if v is not None]
na = lambda v, fmt: "-" if v != v else fmt % v
print("\nbench-gateway summary (medians over rounds; forwarded TLS, capture on the router's server-side veth)")
print("%-11s %9s %9s %7s %9s %5s %6s %7s %8s %8s %6s %9s %s" % ("tool", "delivered", "saved", "saved%", "received", "drops",
      "cpu_s", "rss_MiB", "fwd_MB/s", "h2l_MB/s", "busy%", "in_order", "(frames back in time per round, max step)"))
for t in dict.fromkeys(r["tool"] for r in rows):
    tr = [r for r in rows if r["tool"] == t]
    f = lambda k: med(col(tr, k))
    order, back = "-", ""
    if t != "none":
        order = "yes" if all(r["strict_order"] == "yes" for r in tr) else "NO"
        back = "(%s; max %s us)" % (" ".join(r["out_of_order"] for r in tr),
                                    na(max(col(tr, "max_step_us") or [float("nan")]), "%.1f"))
    print("%-11s %9.0f %9s %7s %9s %5s %6s %7s %8.1f %8.1f %6.1f %9s %s" % (t, f("delivered"), na(f("saved"), "%.0f"),
          na(f("saved_pct"), "%.2f"), na(f("received"), "%.0f"), na(f("drops"), "%.0f"), na(f("cpu_s"), "%.2f"), na(f("max_rss_mib"), "%.1f"),
          f("fwd_MBps"), f("h2load_MBps"), f("host_busy_pct"), order, back))
by = lambda t: {r["round"]: r for r in rows if r["tool"] == t}
def ratio(a, b, k):
    xs = [num(a[x], k) / num(b[x], k) for x in a if x in b and num(a[x], k) is not None and (num(b[x], k) or 0) > 0]
    return "%.2f (rounds %s)" % (med(xs), " ".join("%.2f" % x for x in xs)) if xs else "-"
eh, td, no = by("ecapture-hp"), by("tcpdump"), by("none")
if eh and td:
    print("ecapture-hp / tcpdump, within a round, median: saved%% %s; cpu %s; rss %s; fwd MB/s %s" % (
          ratio(eh, td, "saved_pct"), ratio(eh, td, "cpu_s"), ratio(eh, td, "max_rss_mib"), ratio(eh, td, "fwd_MBps")))
for t, d in (("ecapture-hp", eh), ("tcpdump", td)):
    if d and no:
        print("%s / none (the forwarding with no capture): fwd MB/s %s" % (t, ratio(d, no, "fwd_MBps")))
if eh:
    e = list(eh.values())
    ns = col(e, "kernel_ns_per_pkt")
    print("ecapture-hp: TLS sessions held %s, not held %s (per round); TC program %s ns/pkt" % (
          " ".join(r["held"] for r in e), " ".join(r["not_held"] for r in e), na(med(ns), "%.0f")))
    bad = [r["round"] for r in e if r["held"] != "0" or r["strict_order"] != "yes" or r["out_of_order"] != "0"]
    print("forwarded TLS: %s" % ("never held, every ecapture-hp file in strict time order" if not bad else
          "HELD or out of time order in round(s) %s" % " ".join(bad)))
print("note: %s CPUs shared by client, server, the router's forwarding, the capture tool (and other users)" % sys.argv[2])
dead = [r for r in rows if r["reqs_done"] == "0"]
if dead:
    print("bench-gateway: no download completed in %d run(s)" % len(dead))
print("results: %s" % sys.argv[1])
sys.exit(1 if dead else 0)
PY
