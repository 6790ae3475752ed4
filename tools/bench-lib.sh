# SPDX-License-Identifier: BSD-2-Clause
# Shared set-up of the benchmark scripts (tools/bench-capture.sh, tools/bench-tls.sh,
# tools/bench-gateway.sh, tools/gen/make-replay-input.sh): sourced, not run. Each script sets
# its own netns/veth names and addresses (distinct per script, so they never collide) and its BG
# array of background pids.

# need_tools NAME TOOL...: one line and exit 2 for the first TOOL not on PATH.
need_tools() {
  local name=$1 t
  shift
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "$name: $t not on PATH" >&2; exit 2; }
  done
}

# wait_for CMD...: up to 20 s until CMD succeeds.
wait_for() {
  local i
  for i in $(seq 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# listening PORT: a TCP listener on PORT in netns $NSB.
listening() { ip netns exec "$NSB" ss -Hltn "sport = :$1" | grep -q LISTEN; }

# veth_pair [LINK-OPTION...]: fresh netns $NSA/$NSB joined by veth $VA/$VB with $IPA/$IPB /24,
# loopbacks up; the options go to `ip link set VETH ... up` on both ends (e.g. gso_max_segs 1).
veth_pair() {
  ip netns del "$NSA" 2>/dev/null
  ip netns del "$NSB" 2>/dev/null
  ip netns add "$NSA" && ip netns add "$NSB" || exit 1
  ip link add "$VA" netns "$NSA" type veth peer name "$VB" netns "$NSB" || exit 1
  ip -n "$NSA" addr add "$IPA/24" dev "$VA"
  ip -n "$NSB" addr add "$IPB/24" dev "$VB"
  ip -n "$NSA" link set "$VA" "$@" up
  ip -n "$NSB" link set "$VB" "$@" up
  ip -n "$NSA" link set lo up
  ip -n "$NSB" link set lo up
}

# stop_bg_and_netns: kill the BG pids, reap them, delete both netns (for cleanup traps).
stop_bg_and_netns() {
  local p
  for p in "${BG[@]:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  ip netns del "$NSA" 2>/dev/null
  ip netns del "$NSB" 2>/dev/null
}

# self_signed_cert DIR: DIR/key.pem + DIR/cert.pem (P-256, one day) for the TLS servers.
self_signed_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=ehp-bench -keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null
}

# cpu_ticks PID: utime+stime of PID in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; }

# sampler PID FILE: every 0.1 s, "ticks max_rss_kib" of PID until it exits.
sampler() {
  local pid=$1 file=$2 max=0 ticks=0 rss t
  while [[ -e /proc/$pid/stat ]]; do
    t=$(cpu_ticks "$pid") && [[ -n $t ]] && ticks=$t
    rss=$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status" 2>/dev/null)
    [[ -n $rss ]] && ((rss > max)) && max=$rss
    echo "$ticks $max" >"$file.tmp" && mv -f "$file.tmp" "$file"
    sleep 0.1
  done
}

# prog_stats PID: "run_time_ns run_cnt" summed over the TC programs (ehp_cap_*) that PID holds.
# Found through the process's fds (fdinfo prog_id), then `bpftool prog show id`: listing every
# program races with other users loading and unloading theirs.
prog_stats() {
  python3 - "$1" <<'PY'
import glob, json, subprocess, sys
t = c = 0
ids = set()
for f in glob.glob("/proc/%s/fdinfo/*" % sys.argv[1]):
    try:
        for line in open(f):
            if line.startswith("prog_id:"):
                ids.add(int(line.split()[1]))
    except OSError:
        pass
for i in sorted(ids):
    r = subprocess.run(["bpftool", "-j", "prog", "show", "id", str(i)], capture_output=True, text=True)
    try:
        p = json.loads(r.stdout)
    except ValueError:
        continue
    if p.get("name", "").startswith("ehp_cap_"):
        t += p.get("run_time_ns", 0); c += p.get("run_cnt", 0)
print(t, c)
PY
}
