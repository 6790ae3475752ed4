# SPDX-License-Identifier: BSD-2-Clause
# Shared set-up of the benchmark scripts (tools/bench-capture.sh, tools/bench-tls.sh,
# tools/gen/make-replay-input.sh): sourced, not run. Each script sets its own NSA/NSB/VA/VB/
# IPA/IPB (distinct per script, so they never collide) and its BG array of background pids.

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
