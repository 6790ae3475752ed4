#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Builds the libFuzzer targets of tests/fuzz/ and runs each for SECONDS (default 60; `make fuzz`).
#   tools/fuzz.sh [SECONDS]
# Environment:
#   BUILD_FUZZ    build dir (default <repo>/build-fuzz), configured with clang and -DEHP_FUZZ=ON
#   FUZZ_TARGETS  space-separated subset of the targets (default: all)
#   FUZZ_JOBS     build parallelism (default 2)
# Seed corpora are generated at run time by fuzz_seeds (built from the project's own encoders);
# what libFuzzer finds is kept in $BUILD_FUZZ/fuzz-corpus/<target>/ across runs, crash
# reproducers go to $BUILD_FUZZ/fuzz-artifacts/ (keep the ones worth keeping in
# tests/fuzz/crashers/<target>/: every run replays them). Exits non-zero if any target crashes, leaks,
# times out or violates its property. fuzz_translate loads programs into the kernel verifier
# and needs root for that (without it, it checks translation only and says so).
set -euo pipefail

secs=${1:-60}
[[ $secs =~ ^[0-9]+$ && $secs -gt 0 ]] || { echo "fuzz.sh: SECONDS must be a positive integer, got '$secs'" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_FUZZ:-$root/build-fuzz}
jobs=${FUZZ_JOBS:-2}
all_targets="fuzz_frame fuzz_keylog fuzz_ring_record fuzz_pcapng_prefix fuzz_capture_file fuzz_elf fuzz_translate fuzz_filter"
targets=${FUZZ_TARGETS:-$all_targets}

# libFuzzer ships in libclang-rt-14-dev, which clang only recommends: check it links.
for tool in clang clang++ cmake; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool not found (run tools/install-deps.sh)" >&2; exit 1; }
done
probe_dir=$(mktemp -d /tmp/ehp-fuzz-probe.XXXXXX)
trap 'rm -rf "$probe_dir"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$probe_dir/p.cc"
if ! clang++ -fsanitize=fuzzer,address,undefined "$probe_dir/p.cc" -o "$probe_dir/p" 2>"$probe_dir/err"; then
  echo "fuzz.sh: clang cannot link a libFuzzer target (is libclang-rt-14-dev installed?):" >&2
  head -3 "$probe_dir/err" >&2
  exit 1
fi

san="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
echo "fuzz.sh: configuring $build"
if ! cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEHP_FUZZ=ON "-DCMAKE_C_FLAGS=$san" "-DCMAKE_CXX_FLAGS=$san" \
      >"$probe_dir/configure.log" 2>&1; then
  tail -30 "$probe_dir/configure.log" >&2
  echo "fuzz.sh: configure failed" >&2
  exit 1
fi
# cmake/bpf.cmake's vmlinux.h rule lives in the top directory, where targets of bpf/ cannot
# trigger it ("No rule to make target 'bpf/vmlinux.h'" in a fresh build dir): make it here.
if [[ " $targets " == *" fuzz_translate "* && ! -s $build/bpf/vmlinux.h ]]; then
  mkdir -p "$build/bpf"
  bpftool=$(command -v bpftool || echo /usr/sbin/bpftool)
  "$bpftool" btf dump file /sys/kernel/btf/vmlinux format c >"$build/bpf/vmlinux.h.tmp"
  mv "$build/bpf/vmlinux.h.tmp" "$build/bpf/vmlinux.h"
fi
echo "fuzz.sh: building $targets fuzz_seeds (-j$jobs)"
# shellcheck disable=SC2086
cmake --build "$build" -j "$jobs" --target $targets fuzz_seeds

corpus_root=$build/fuzz-corpus
seeds=$corpus_root/seeds
artifacts=$build/fuzz-artifacts
logs=$build/fuzz-logs
rm -rf "$seeds"
mkdir -p "$corpus_root" "$artifacts" "$logs"
"$build/fuzz/fuzz_seeds" "$seeds"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=()
for t in $targets; do
  mkdir -p "$corpus_root/$t" "$seeds/$t"
  log=$logs/$t.log
  start=$SECONDS
  rc=0
  # Reproducers of bugs found earlier (tests/fuzz/crashers/<target>/, small raw files) are
  # loaded with the corpus on every run, so a fixed bug stays fixed.
  crashers=()
  [[ -d $root/tests/fuzz/crashers/$t ]] && crashers=("$root/tests/fuzz/crashers/$t")
  dict_opt=()
  [[ -f $seeds/$t.dict ]] && dict_opt=(-dict="$seeds/$t.dict")
  # -timeout: one input running > 25 s is a hang; the outer timeout catches a stuck process.
  timeout --kill-after=10 $((secs + 120)) "$build/fuzz/$t" "${dict_opt[@]}" -max_total_time="$secs" -timeout=25 \
    -rss_limit_mb=2560 -print_final_stats=1 -artifact_prefix="$artifacts/$t-" \
    "$corpus_root/$t" "$seeds/$t" "${crashers[@]}" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 || true)
  if ((rc != 0)); then
    failed+=("$t")
    echo "fuzz.sh: $t FAILED (exit $rc after $((SECONDS - start)) s); log $log" >&2
    grep -E 'ERROR|property violated|runtime error|SUMMARY|Test unit written|artifact' "$log" | head -20 >&2 || true
  else
    echo "fuzz.sh: $t ok: ${execs:-?} inputs in $((SECONDS - start)) s, ${cov:-cov ?}, corpus $(ls "$corpus_root/$t" | wc -l) files"
    grep -E "^$t: " "$log" | tail -1 || true  # a target's own totals, if it prints some
  fi
done

if ((${#failed[@]})); then
  echo "fuzz.sh: FAILED: ${failed[*]} (reproducers in $artifacts)" >&2
  exit 1
fi
echo "fuzz.sh: all targets passed ${secs} s each"
