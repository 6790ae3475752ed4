#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Runs the unit tests (ctest -L unit) in a build instrumented with ASan + UBSan
# (-DEHP_SANITIZE=ON, see the top-level CMakeLists.txt). Builds only the unit test targets.
#   tools/sanitize.sh [extra ctest args...]
# Environment: BUILD_SAN (default <repo>/build-sanitize), JOBS (default 2).
# Any ASan report, leak or UBSan "runtime error" fails the test that hit it (halt_on_error).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_SAN:-$root/build-sanitize}
jobs=${JOBS:-2}

echo "sanitize.sh: configuring $build (EHP_SANITIZE=ON)"
cfg_log=$(mktemp /tmp/ehp-sanitize-cfg.XXXXXX)
trap 'rm -f "$cfg_log"' EXIT
# Debug with -O1: ASan's recommended level, and cheaper to compile than -O2 (the build is most of
# the run time). UBSan stays recoverable in the compiled code so that the suppressions in
# tests/fuzz/ubsan.supp (third-party code) can apply; halt_on_error=1 below stops on the rest.
if ! cmake -S "$root" -B "$build" -DEHP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
      "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g" "-DCMAKE_C_FLAGS_DEBUG=-O1 -g" \
      >"$cfg_log" 2>&1; then
  tail -30 "$cfg_log" >&2
  echo "sanitize.sh: configure failed" >&2
  exit 1
fi

# Which targets do the unit tests need? gtest_discover_tests() only knows its tests after the
# binary is built, so read the labels from the test fragments: every
# gtest_discover_tests(<target> ... LABELS unit ...) in tests/*/*.cmake. Plain add_test() unit
# tests are known at configure time: their command's executable, when it lives in the build
# dir, is a target too.
mapfile -t targets < <(python3 - "$root" "$build" <<'PY'
import glob, json, os, re, subprocess, sys
root, build = sys.argv[1], sys.argv[2]
targets = []
add_test_cmd = {}  # add_test(NAME n COMMAND c ...) -> n: c, for executables not built yet
frags = glob.glob(os.path.join(root, "tests", "*", "*.cmake")) + glob.glob(os.path.join(root, "bench", "*.cmake"))
for frag in sorted(frags):
    text = re.sub(r"#[^\n]*", "", open(frag).read())
    for m in re.finditer(r"add_test\s*\(\s*NAME\s+(\S+)\s+COMMAND\s+(\S+)", text):
        add_test_cmd[m.group(1)] = m.group(2)
    for m in re.finditer(r"gtest_discover_tests\s*\(", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        args = text[m.end():i - 1].split()
        if not args:
            continue
        labels = []
        if "LABELS" in args:
            for tok in args[args.index("LABELS") + 1:]:
                if tok.isupper() and tok.replace("_", "").isalpha():
                    break  # next property keyword
                labels += tok.strip('"').split(";")
        if "unit" in labels:
            targets.append(args[0])
out = subprocess.run(["ctest", "-L", "unit", "--show-only=json-v1"], cwd=build,
                     capture_output=True, text=True).stdout
try:
    for t in json.loads(out).get("tests", []):
        cmd = t.get("command") or []
        if cmd and os.path.abspath(cmd[0]).startswith(os.path.abspath(build) + os.sep):
            targets.append(os.path.basename(cmd[0]))
        elif not cmd:  # ctest could not resolve the executable: it is a target not built yet
            c = add_test_cmd.get(t.get("name"), "")
            if re.fullmatch(r"[A-Za-z0-9_.+-]+", c):
                targets.append(c)
except ValueError:
    pass
for t in dict.fromkeys(targets):
    print(t)
PY
)
if ((${#targets[@]} == 0)); then
  echo "sanitize.sh: no unit test targets found; building everything" >&2
  cmake --build "$build" -j "$jobs"
else
  echo "sanitize.sh: building ${targets[*]} (-j$jobs)"
  cmake --build "$build" -j "$jobs" --target "${targets[@]}"
fi

# Leaks are reported by LSan at exit; UBSan stops at the first unsuppressed error, so a report
# can never scroll by as a passing test.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:suppressions=$root/tests/fuzz/ubsan.supp}
cd "$build"
echo "sanitize.sh: ctest -L unit"
ctest -L unit --output-on-failure "$@"
