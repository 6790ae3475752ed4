#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Where the kernel puts the handshake uprobes, read from the processes' own memory:
#  - without -p, every process that maps libssl.so.3 gets the breakpoint (int3, 0xcc) at the
#    probe address ecapture-hp prints ("hooks: handshake_func connect@0x... accept@0x...");
#  - with -p PID, only PID does: other processes run libssl untouched (no trap, no cost);
#  - the probe point is an emulated instruction (jmp e9/eb or push) in the original library.
# Two idle python3 processes that imported ssl serve as the processes. Root (uprobes, /proc/PID/mem).
TAG=uscope
source "$(dirname "$0")/faults_lib.sh"
LIB=/usr/lib/x86_64-linux-gnu/libssl.so.3
[[ -r $LIB ]] || { echo "SKIP: no $LIB"; exit 0; }

idle_py() {
  python3 -c 'import ssl, sys, time; print("ready", flush=True); time.sleep(120)' >"$WORK/$1.log" 2>&1 &
  BG_PIDS+=($!)
  eval "$1=$!"
  wait_for grep -q ready "$WORK/$1.log" || { echo "python $1 did not start"; exit 1; }
}
idle_py A
idle_py B

# byte_at PID FILE_OFFSET -> the byte (2 hex digits) at that file offset of libssl in PID's memory
byte_at() {
  python3 - "$1" "$2" "$LIB" <<'PY'
import os, sys
pid, off, lib = int(sys.argv[1]), int(sys.argv[2], 16), os.path.realpath(sys.argv[3])
for line in open(f"/proc/{pid}/maps"):
    f = line.split()
    if len(f) < 6 or os.path.realpath(f[5]) != lib:
        continue
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    moff = int(f[2], 16)
    if moff <= off < moff + (hi - lo):
        with open(f"/proc/{pid}/mem", "rb") as m:
            m.seek(lo + off - moff)
            print(m.read(1).hex())
        sys.exit(0)
sys.exit(f"offset {off:#x} not mapped in {pid}")
PY
}
# original byte, from the file
file_byte() { od -An -tx1 -j $(($1)) -N1 "$LIB" | tr -d ' \n'; }

run_case() {  # NAME ARGS... -> sets CONN ACC (probe file offsets) and the bytes seen in A and B
  local name=$1; shift
  start_ehp "$WORK/$name.log" tls -m keylog --keylogfile "$WORK/$name.keys" "$@" || exit 1
  local hooks
  hooks=$(grep -o 'connect@0x[0-9a-f]* accept@0x[0-9a-f]*' "$WORK/$name.log" | head -1)
  CONN=${hooks#connect@}; CONN=${CONN%% *}
  ACC=${hooks##*accept@}
  [[ -n $CONN && -n $ACC ]] || { echo "no hook offsets in the start-up line:"; cat "$WORK/$name.log"; exit 1; }
  A_CONN=$(byte_at "$A" "$CONN"); A_ACC=$(byte_at "$A" "$ACC")
  B_CONN=$(byte_at "$B" "$CONN"); B_ACC=$(byte_at "$B" "$ACC")
  echo "  $name: connect@$CONN accept@$ACC; A: $A_CONN $A_ACC, B: $B_CONN $B_ACC (file: $(file_byte "$CONN") $(file_byte "$ACC"))"
  stop_ehp
  check "$name: exits 0" test "$EHP_RC" -eq 0
}

run_case all
check "probe points are emulated instructions (jmp/push) in the file" \
  bash -c "[[ '$(file_byte "$CONN")' =~ ^(e9|eb|5[0-7]|41)$ && '$(file_byte "$ACC")' =~ ^(e9|eb|5[0-7]|41)$ ]]"
check "system-wide: A has the breakpoints" test "$A_CONN$A_ACC" = cccc
check "system-wide: B has the breakpoints" test "$B_CONN$B_ACC" = cccc
check "after detach A's code is the file's again" \
  test "$(byte_at "$A" "$CONN")$(byte_at "$A" "$ACC")" = "$(file_byte "$CONN")$(file_byte "$ACC")"

run_case pid -p "$A"
check "-p A: A has the breakpoints" test "$A_CONN$A_ACC" = cccc
check "-p A: B has none (its code is the file's)" \
  test "$B_CONN$B_ACC" = "$(file_byte "$CONN")$(file_byte "$ACC")"
finish
