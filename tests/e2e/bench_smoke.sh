#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# CI smoke runs of the benchmark tools (not timed tests: they only prove the tools still work
# and measure something real). Usage: bench_smoke.sh BUILD_DIR capture|tls|replay|gateway
set -uo pipefail
BUILD=$(cd "${1:?}" && pwd)
MODE=${2:?}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$(mktemp -d "$BUILD/bench-smoke-$MODE.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
export EHP_BENCH_TAG=p10s${MODE:0:1}
PASS=0
FAIL=0
check() {
  local desc=$1; shift
  if "$@"; then echo "PASS: $desc"; PASS=$((PASS + 1)); else echo "FAIL: $desc"; FAIL=$((FAIL + 1)); fi
}
case $MODE in
  capture)
    bash "$ROOT/tools/bench-capture.sh" "$BUILD" --seconds 1 --sizes 1400 --senders 1 --rounds 1 \
      --tools "ecapture-hp dumpcap" --out "$OUT" | tee "$OUT/log"
    # ecapture-hp row: it saved packets it was delivered, its file was readable, bpf_stats gave a cost.
    check "summary printed" grep -q "^bench-capture summary" "$OUT/log"
    check "ecapture-hp saved >= 90% of delivered" awk -F'\t' \
      '$4 == "ecapture-hp" && $5 > 1000 && $6 >= 0.9 * $5 && $6 <= $5 {ok = 1} END {exit !ok}' "$OUT/results.tsv"
    check "kernel ns/packet measured" awk -F'\t' '$4 == "ecapture-hp" && $10 ~ /^[0-9]+$/ && $10 > 0 {ok = 1} END {exit !ok}' "$OUT/results.tsv"
    check "dumpcap row measured" awk -F'\t' '$4 == "dumpcap" && $6 > 0 {ok = 1} END {exit !ok}' "$OUT/results.tsv"
    ;;
  tls)
    bash "$ROOT/tools/bench-tls.sh" "$BUILD" --rounds 1 --seconds 1 --peers tcpdump --out "$OUT" | tee "$OUT/log"
    check "summary printed" grep -q "^bench-tls summary" "$OUT/log"
    # 2 workloads x 3 variants (untraced, ecapture-hp, tcpdump), each served requests.
    check "every measurement served requests" awk -F'\t' 'NR > 1 && !($5 > 0) {bad = 1} NR > 1 {n++} END {exit bad || n != 6}' "$OUT/results.tsv"
    check "traced runs wrote TLS keys (DSBs)" grep -qE "ecapture-hp .*, [1-9][0-9]* DSBs" "$OUT/log"
    check "the tcpdump peer wrote packets" grep -qE "tcpdump wrote [1-9][0-9]* packets" "$OUT/log"
    ;;
  replay)
    bash "$ROOT/tools/bench.sh" "$BUILD" --quick --rounds 1 --no-capture --no-tls --no-gateway | tee "$OUT/log"
    check "replay vs fio ratio printed" grep -qE "replay / fio +[0-9]" "$OUT/log"
    if command -v go >/dev/null; then
      check "replay vs pcapgo ratio printed" grep -qE "replay / pcapgo +[0-9]" "$OUT/log"
      # Same packets through both writers: replay and pcapgo report the same packet count.
      same_packets() {
        awk -F'\t' '$2 == "replay" {a = $4} $2 == "pcapgo" {b = $4} END {exit !(a > 0 && a == b)}' "$1"
      }
      check "replay and pcapgo wrote the same packets (bulk)" same_packets "$BUILD/bench-data/replay-bulk.tsv"
      check "replay and pcapgo wrote the same packets (small)" same_packets "$BUILD/bench-data/replay-small.tsv"
    fi
    check "stage benchmarks ran" grep -q "BM_MoodycamelHandoff" "$OUT/log"
    ;;
  gateway)
    bash "$ROOT/tools/bench-gateway.sh" "$BUILD" --seconds 2 --rounds 1 --out "$OUT" | tee "$OUT/log"
    check "summary printed" grep -q "^bench-gateway summary" "$OUT/log"
    # tsv COND: some row of results.tsv (columns by header name, c["tool"]...) meets COND.
    tsv() { awk -F'\t' "NR == 1 {for (i = 1; i <= NF; i++) c[\$i] = i; next} $1 {ok = 1} END {exit !ok}" "$OUT/results.tsv"; }
    check "the run with no capture completed downloads" tsv '$c["tool"] == "none" && $c["reqs_done"] > 0'
    no_row() { ! tsv "$1"; }
    check "no run without a completed download" no_row '$c["reqs_done"] == 0'
    check "ecapture-hp saved >= 99% of delivered" tsv '$c["tool"] == "ecapture-hp" && $c["delivered"] > 1000 &&
      $c["saved"] >= 0.99 * $c["delivered"] && $c["saved"] <= $c["delivered"]'
    # The 4 forwarded h2load connections: no key can come, none held, the file in time order.
    check "forwarded TLS not held (held 0, not held 4)" tsv '$c["tool"] == "ecapture-hp" && $c["held"] == 0 && $c["not_held"] == 4'
    check "ecapture-hp's file in strict time order" tsv '$c["tool"] == "ecapture-hp" && $c["strict_order"] == "yes" &&
      $c["out_of_order"] == 0 && $c["ehp_out_of_order"] == 0'
    check "the tcpdump row measured" tsv '$c["tool"] == "tcpdump" && $c["saved"] > 1000'
    ;;
  *) echo "unknown mode $MODE"; exit 2 ;;
esac
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
