#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# End-to-end tests of ehp::capture on a veth pair into a private netns (root).
#   capture_e2e.sh TOOLDIR MODE
# MODE:
#   traffic  ping/UDP/curl captured by capture_probe WHILE tcpdump records the same interface;
#            compare packet sets, directions, timestamps, order; nothing left behind after exit.
#   foreign  an existing clsact with foreign filters keeps working while we capture and survives
#            untouched afterwards.
#   stale    filters of a SIGKILLed run are found and removed; a live run's filters are not.
#   flood    sendmmsg UDP flood over the veth: throughput and every loss accounted.
#   multi    two interfaces in one capture: records carry the right ifindex and direction.
#   uid      --uid keeps only packets attributed to that uid (curl as nobody vs root).
set -euo pipefail
TOOLS=$1
MODE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
PROBE=$TOOLS/capture_probe
FLOOD=$TOOLS/capture_udp_flood

ID=$$
NS=p5ns$ID
H=p5h$ID
N=p5n$ID
NET=10.205.$((ID % 250))
HIP=$NET.1
NIP=$NET.2
TMP=$(mktemp -d /tmp/p5e2e.XXXXXX)
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip link del "$H" 2>/dev/null || true
  ip link del "p5g$ID" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  [ -n "${P5_KEEP:-}" ] && echo "kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$TMP"/*.err "$TMP"/*.out; do [ -f "$f" ] && { echo "== $f"; tail -20 "$f"; } >&2; done
  exit 1
}

# wait_for DESCRIPTION TIMEOUT_S COMMAND...: polls a condition (not a fixed sleep).
wait_for() {
  local what=$1 t=$2
  shift 2
  local deadline=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "timed out waiting for $what"
    sleep 0.05
  done
}

contains() { grep "$@" >/dev/null; }
nsx() { ip netns exec "$NS" "$@"; }
pingx() { python3 "$HERE/capture_ping.py" "$@"; }

setup() {
  ip netns add "$NS"
  ip link add "$H" type veth peer name "$N" netns "$NS"
  # No IPv6 (router solicitations, MLD) and static neighbours (no ARP): the only packets on
  # the link are the ones this test sends, so both captures must see exactly the same set.
  echo 1 > /proc/sys/net/ipv6/conf/"$H"/disable_ipv6
  nsx sh -c "echo 1 > /proc/sys/net/ipv6/conf/$N/disable_ipv6"
  ip addr add "$HIP/24" dev "$H"
  nsx ip addr add "$NIP/24" dev "$N"
  ip link set "$H" up
  nsx ip link set "$N" up
  nsx ip link set lo up
  local hmac nmac
  hmac=$(cat /sys/class/net/"$H"/address)
  nmac=$(nsx cat /sys/class/net/"$N"/address)
  ip neigh replace "$NIP" lladdr "$nmac" dev "$H" nud permanent
  nsx ip neigh replace "$HIP" lladdr "$hmac" dev "$N" nud permanent
  wait_for "veth carrier" 10 grep -qx 1 /sys/class/net/"$H"/carrier
}

start_probe() { # NAME [args...]
  local name=$1
  shift
  rm -f "$TMP/$name.ready"
  "$PROBE" -i "$H" --ready "$TMP/$name.ready" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  PROBE_PID=$!
  PIDS+=("$PROBE_PID")
  wait_for "$name attached" 20 test -s "$TMP/$name.ready"
}

stop_probe() { # PID NAME
  kill -INT "$1"
  wait "$1" || fail "$2 exited with $?"
  grep -q '^stats ' "$TMP/$2.out" || fail "$2 printed no stats"
}

stat_of() { # FILE KEY
  sed -n "s/.*[ ]$2=\([0-9.]*\).*/\1/p" "$1"
}

assert_nothing_left() {
  local f
  f=$(tc filter show dev "$H" ingress; tc filter show dev "$H" egress)
  [ -z "$f" ] || fail "filters left behind on $H: $f"
  if tc qdisc show dev "$H" | contains clsact; then fail "clsact left behind on $H"; fi
}

mode_traffic() {
  setup
  mkdir -p "$TMP/www"
  head -c 300000 /dev/urandom >"$TMP/www/blob.bin"
  nsx python3 -m http.server 8080 --bind "$NIP" --directory "$TMP/www" >"$TMP/http.out" 2>"$TMP/http.err" &
  PIDS+=($!)
  wait_for "http server" 10 nsx sh -c "ss -ltn | grep -q '$NIP:8080'"

  tcpdump -i "$H" -n -U -s 262144 --time-stamp-precision nano -w "$TMP/td.pcap" 2>"$TMP/td.err" &
  local td=$!
  PIDS+=("$td")
  wait_for "tcpdump listening" 10 grep -q "listening on" "$TMP/td.err"
  start_probe cap --pcap "$TMP/cap.pcap" --meta "$TMP/cap.tsv"
  local probe=$PROBE_PID

  local t0
  t0=$(date +%s%N)
  pingx "$NIP" 3 || fail "ping host->ns"
  nsx python3 "$HERE/capture_ping.py" "$HIP" 2 || fail "ping ns->host"
  # UDP both ways, including a datagram that IP-fragments (MTU 1500).
  nsx python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for n in (1, 100, 1400, 4000):
    s.sendto(b'n' * n, ('$HIP', 9999))
"
  python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for n in (7, 700):
    s.sendto(b'h' * n, ('$NIP', 9998))
"
  curl -s -o "$TMP/index.html" "http://$NIP:8080/" || fail "curl index"
  curl -s -o "$TMP/blob.dl" "http://$NIP:8080/blob.bin" || fail "curl blob"
  cmp -s "$TMP/blob.dl" "$TMP/www/blob.bin" || fail "download corrupted: capture altered traffic?"
  # Sentinel round trip: everything sent before it has been through both hooks.
  pingx "$NIP" 1 || fail "sentinel ping"
  local t1
  t1=$(date +%s%N)

  stop_probe "$probe" cap
  # tcpdump drops what is still queued on its socket when interrupted: first wait until its
  # file holds as many frames as we delivered (it may hold more; the compare reports that).
  local want
  want=$(stat_of "$TMP/cap.out" delivered)
  wait_for "tcpdump to write $want frames" 15 python3 "$HERE/capture_compare.py" --count "$TMP/td.pcap" --at-least "$want"
  kill -INT "$td"
  wait "$td" || true
  cat "$TMP/cap.out"
  assert_nothing_left

  [ "$(stat_of "$TMP/cap.out" reserve_fail)" = 0 ] || fail "reserve failures"
  [ "$(stat_of "$TMP/cap.out" out_of_order)" = 0 ] || fail "out of order"
  [ "$(stat_of "$TMP/cap.out" kernel_records)" = "$(stat_of "$TMP/cap.out" delivered)" ] ||
    fail "kernel records != delivered"
  python3 "$HERE/capture_compare.py" --tcpdump "$TMP/td.pcap" --capture "$TMP/cap.pcap" --meta "$TMP/cap.tsv" \
    --host-ip "$HIP" --ns-ip "$NIP" --start-ns "$t0" --end-ns "$t1" || fail "capture differs from tcpdump"
}

foreign_count() { # MAPNAME -> packets counted by all foreign filters (one map instance each)
  bpftool map dump name "$1" -j | python3 -c '
import json, sys
d = json.load(sys.stdin)
elems = [e for m in d for e in m["elements"]] if d and "elements" in d[0] else d
print(sum(int(e["formatted"]["value"]) for e in elems))'
}

mode_foreign() {
  setup
  # Someone else's clsact with a counting BPF filter on each hook plus a u32 filter; ours gets
  # the kernel's automatic priority, ahead of these.
  local cnt=p5f$ID
  clang -O2 -g -target bpf -I/usr/include/$(uname -m)-linux-gnu -DCNT_NAME="$cnt" -c "$HERE/capture_foreign.bpf.c" -o "$TMP/foreign.o" ||
    fail "compile foreign filter"
  tc qdisc add dev "$H" clsact
  tc filter add dev "$H" ingress prio 7 handle 7 bpf da obj "$TMP/foreign.o" sec tc
  tc filter add dev "$H" egress prio 9 handle 9 bpf da obj "$TMP/foreign.o" sec tc
  tc filter add dev "$H" ingress prio 11 u32 match u32 0 0 classid 1:1
  local before_in before_eg
  before_in=$(tc filter show dev "$H" ingress)
  before_eg=$(tc filter show dev "$H" egress)
  local c0
  c0=$(foreign_count "$cnt")
  start_probe fcap
  local probe=$PROBE_PID
  pingx "$NIP" 4 || fail "ping with capture + foreign filters"
  tc filter show dev "$H" ingress | contains "ehp_cap_ingress" || fail "our ingress filter missing"
  tc filter show dev "$H" egress | contains "ehp_cap_egress" || fail "our egress filter missing"
  # The foreign filters still see every packet: our program returned TC_ACT_UNSPEC (continue)
  # instead of ending classification.
  local c1
  c1=$(foreign_count "$cnt")
  [ $((c1 - c0)) -ge 8 ] || fail "foreign filters counted $((c1 - c0)) packets during capture, expected >= 8"
  stop_probe "$probe" fcap
  cat "$TMP/fcap.out"
  [ "$(stat_of "$TMP/fcap.out" kernel_records)" -ge 8 ] || fail "capture saw too few packets"
  tc qdisc show dev "$H" | contains clsact || fail "foreign clsact removed"
  [ "$(tc filter show dev "$H" ingress)" = "$before_in" ] || fail "ingress filters changed: $(tc filter show dev "$H" ingress)"
  [ "$(tc filter show dev "$H" egress)" = "$before_eg" ] || fail "egress filters changed: $(tc filter show dev "$H" egress)"
  pingx "$NIP" 1 || fail "ping after capture"
  local c2
  c2=$(foreign_count "$cnt")
  [ $((c2 - c1)) -ge 2 ] || fail "foreign filters stopped working after capture"
  echo "foreign filters intact: counted $((c1 - c0)) packets during capture, $((c2 - c1)) after"
}

mode_stale() {
  setup
  tc qdisc add dev "$H" clsact
  tc filter add dev "$H" ingress prio 11 u32 match u32 0 0 classid 1:1
  start_probe dead
  kill -9 "$PROBE_PID"
  wait "$PROBE_PID" 2>/dev/null || true
  tc filter show dev "$H" ingress | contains ehp_cap_ingress || fail "killed run left no filter (test is void)"
  start_probe live
  local live=$PROBE_PID
  [ "$(tc filter show dev "$H" ingress | grep -c ehp_cap_ingress)" = 2 ] || fail "expected dead + live filters"
  "$PROBE" --remove-stale -i "$H" >"$TMP/stale.out" 2>"$TMP/stale.err" || fail "remove-stale failed"
  cat "$TMP/stale.out"
  grep -q '^removed=2$' "$TMP/stale.out" || fail "expected exactly the 2 stale filters removed"
  [ "$(tc filter show dev "$H" ingress | grep -c ehp_cap_ingress)" = 1 ] || fail "live filter removed or stale kept"
  pingx "$NIP" 2 || fail "ping"
  stop_probe "$live" live
  [ "$(stat_of "$TMP/live.out" kernel_records)" -ge 4 ] || fail "live capture stopped working"
  local f
  f=$(tc filter show dev "$H" ingress; tc filter show dev "$H" egress)
  echo "$f" | contains ehp_cap && fail "filters left: $f"
  echo "$f" | contains u32 || fail "foreign filter removed"
  echo "stale removal ok"
}

mode_flood() {
  setup
  local secs=${FLOOD_SECONDS:-3} len=${FLOOD_PAYLOAD:-64}
  start_probe flood --count-only
  local probe=$PROBE_PID
  # Two senders pinned to different CPUs: both rings fill at once, the merge must interleave.
  taskset -c 0 "$FLOOD" "$NIP" 9 "$secs" "$len" >"$TMP/flood.sent0" &
  local f0=$!
  taskset -c 1 "$FLOOD" "$NIP" 9 "$secs" "$len" >"$TMP/flood.sent1" 2>/dev/null || taskset -c 0 "$FLOOD" "$NIP" 9 "$secs" "$len" >"$TMP/flood.sent1"
  wait "$f0" || fail "flood"
  python3 -c "
import re, sys
t = sum(int(re.search(r'sent=(\d+)', open(f).read()).group(1)) for f in sys.argv[1:])
print(f'sent={t}')" "$TMP/flood.sent0" "$TMP/flood.sent1" >"$TMP/flood.sent"
  pingx "$NIP" 1 || fail "sentinel ping"
  stop_probe "$probe" flood
  cat "$TMP/flood.sent" "$TMP/flood.out"
  local sent kr seen rf del nr lf
  sent=$(sed -n 's/sent=\([0-9]*\).*/\1/p' "$TMP/flood.sent")
  kr=$(stat_of "$TMP/flood.out" kernel_records)
  seen=$(stat_of "$TMP/flood.out" kernel_seen)
  rf=$(stat_of "$TMP/flood.out" reserve_fail)
  del=$(stat_of "$TMP/flood.out" delivered)
  nr=$(stat_of "$TMP/flood.out" no_ring)
  lf=$(stat_of "$TMP/flood.out" load_fail)
  # Every packet the program saw is either delivered or counted as lost.
  [ "$kr" = "$del" ] || fail "kernel wrote $kr records, userspace delivered $del"
  [ $((kr + rf + nr + lf)) = "$seen" ] || fail "unaccounted packets: seen=$seen records=$kr reserve_fail=$rf"
  [ "$seen" -ge "$sent" ] || fail "program saw $seen packets but $sent were sent on the egress hook"
  [ "$(stat_of "$TMP/flood.out" out_of_order)" = 0 ] || fail "merge delivered records out of timestamp order"
  python3 -c "print('flood: sent %d pkts in %ss, captured %d (%.0f pkt/s), reserve_fail %d' % ($sent, '$secs', $kr, $kr / $secs, $rf))"
}

mode_multi() {
  setup
  # A second veth pair into the same netns: one capture, two interfaces, two ifindexes.
  local H2=p5g$ID N2=p5m$ID NET2=10.206.$((ID % 250))
  ip link add "$H2" type veth peer name "$N2" netns "$NS"
  echo 1 > /proc/sys/net/ipv6/conf/"$H2"/disable_ipv6
  nsx sh -c "echo 1 > /proc/sys/net/ipv6/conf/$N2/disable_ipv6"
  ip addr add "$NET2.1/24" dev "$H2"
  nsx ip addr add "$NET2.2/24" dev "$N2"
  ip link set "$H2" up
  nsx ip link set "$N2" up
  wait_for "second veth carrier" 10 grep -qx 1 /sys/class/net/"$H2"/carrier
  start_probe multi -i "$H2" --meta "$TMP/multi.tsv"
  local probe=$PROBE_PID
  pingx "$NIP" 3 || fail "ping over $H"
  pingx "$NET2.2" 5 || fail "ping over $H2"
  stop_probe "$probe" multi
  ip link del "$H2"
  local ix1 ix2
  ix1=$(cat /sys/class/net/"$H"/ifindex)
  python3 - "$TMP/multi.tsv" "$ix1" <<'PY' || fail "per-interface records wrong"
import collections, sys
rows = [l.split('\t') for l in open(sys.argv[1])]
by = collections.Counter((int(r[2]), int(r[1])) for r in rows)
ix1 = int(sys.argv[2])
others = {ix for ix, _ in by if ix != ix1}
print('records by (ifindex, direction):', dict(by))
# ARP may add a few frames on the second pair (no static neighbours there).
assert by[(ix1, 0)] == 3 and by[(ix1, 1)] == 3, 'first interface: 3 requests out, 3 replies in'
assert len(others) == 1, 'exactly one other interface'
ix2 = others.pop()
assert by[(ix2, 0)] >= 5 and by[(ix2, 1)] >= 5, 'second interface: >= 5 each way'
PY
}

mode_uid() {
  setup
  mkdir -p "$TMP/www"
  chmod 755 "$TMP" "$TMP/www"
  echo hello >"$TMP/www/index.html"
  nsx python3 -m http.server 8080 --bind "$NIP" --directory "$TMP/www" >"$TMP/http.out" 2>"$TMP/http.err" &
  PIDS+=($!)
  wait_for "http server" 10 nsx sh -c "ss -ltn | grep -q '$NIP:8080'"
  # Capture only uid 65534: the curl run as nobody is in, root's curl and ping are out.
  start_probe uid --uid 65534 --meta "$TMP/uid.tsv"
  local probe=$PROBE_PID
  curl -s -o /dev/null "http://$NIP:8080/" || fail "root curl"
  setpriv --reuid 65534 --regid 65534 --clear-groups curl -s -o /dev/null "http://$NIP:8080/" || fail "nobody curl"
  pingx "$NIP" 2 || fail "ping"
  curl -s -o /dev/null "http://$NIP:8080/" || fail "root curl 2"
  stop_probe "$probe" uid
  cat "$TMP/uid.out"
  [ "$(stat_of "$TMP/uid.out" filtered_proc)" -ge 14 ] || fail "root's packets were not filtered out"
  python3 - "$TMP/uid.tsv" <<'PY' || fail "uid filter let the wrong packets through"
import sys
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[1])]
assert len(rows) >= 8, f'only {len(rows)} records for the nobody curl (handshake, request, response, close)'
dirs = {r[1] for r in rows}
assert dirs == {'0', '1'}, f'directions {dirs}'
# Outbound rows are named after nobody's curl. Inbound rows are named after their sender, the
# netns http.server (root); they pass -u because their local receiver is nobody's curl.
for r in rows:
    assert r[5] == '1', f'unattributed record: {r}'
    if r[1] == '1':
        assert r[8] == '65534' and r[7] == 'curl', f'outbound record not from uid 65534 curl: {r}'
    else:
        assert (r[8] == '65534' and r[7] == 'curl') or r[7] == 'python3', f'inbound record neither to nobody curl nor from the server: {r}'
print(f'uid filter: {len(rows)} records, nobody curl out, server replies in, both directions')
PY
}

case "$MODE" in
  traffic) mode_traffic ;;
  foreign) mode_foreign ;;
  stale) mode_stale ;;
  flood) mode_flood ;;
  multi) mode_multi ;;
  uid) mode_uid ;;
  *) fail "unknown mode $MODE" ;;
esac
echo PASS
