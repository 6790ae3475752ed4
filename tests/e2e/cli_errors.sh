#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Bad input: exactly one clear line on stderr, a non-zero exit, no file damaged or left behind,
# no tc hook left behind.
TAG=cli
source "$(dirname "$0")/lib.sh"
setup_veth 43

# expect_error DESCRIPTION REGEX ARGS... : one stderr line matching REGEX, exit != 0
expect_error() {
  local desc=$1 re=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  local lines; lines=$(printf '%s' "$err" | grep -c .)
  if [[ $rc -ne 0 && $lines -eq 1 && $err =~ $re ]]; then
    echo "PASS: $desc  [$err]"; PASS=$((PASS+1))
  else
    echo "FAIL: $desc (rc=$rc, $lines lines): $err"; FAIL=$((FAIL+1))
  fi
}

echo "precious" >"$WORK/existing.pcapng"
expect_error "unknown interface" "nosuch0" "$EHP" tls -m pcap -i nosuch0 -w "$WORK/a.pcapng"
ip link add eh-cli-d0 type veth peer name eh-cli-d1   # created down
expect_error "interface that is down" "eh-cli-d0.* down" "$EHP" tls -m pcap -i eh-cli-d0 -w "$WORK/a.pcapng"
ip link del eh-cli-d0 2>/dev/null
expect_error "invalid filter syntax" "filter" "$EHP" tls -m pcap -i "$HV" -w "$WORK/existing.pcapng" tcp prt 80
check "an invalid filter leaves the existing file untouched" grep -qx precious "$WORK/existing.pcapng"
expect_error "unwritable output directory" "/nonexistent-dir" "$EHP" tls -m pcap -i "$HV" -w /nonexistent-dir/x.pcapng
mkdir -p "$WORK/ww"; chmod 1777 "$WORK/ww"; ln -sf "$WORK/target" "$WORK/ww/link.pcapng"
expect_error "symlink output refused" "link.pcapng" "$EHP" tls -m pcap -i "$HV" -w "$WORK/ww/link.pcapng"
check "symlink target not created" test ! -e "$WORK/target"
expect_error "--cpus out of range" "out of range" "$EHP" tls -m pcap -i "$HV" -w "$WORK/a.pcapng" --cpus 0-999
expect_error "-b with -w -" "-b" "$EHP" tls -m pcap -i "$HV" -w - -b filesize:1000
expect_error "unknown -a condition" "unknown condition" "$EHP" tls -m pcap -i "$HV" -w "$WORK/a.pcapng" -a bogus:1
expect_error "unknown option" "--bogus" "$EHP" tls --bogus
expect_error "bad mode" "model" "$EHP" tls -m nonsense
expect_error "missing interface for pcap mode" "interface" "$EHP" tls -m pcap -w "$WORK/a.pcapng"
expect_error "libssl not found" "libssl" "$EHP" tls -m keylog --keylogfile "$WORK/k.log" --libssl /nonexistent/libssl.so.3
expect_error "-p of a process that does not exist" "-p 2147483600: no such process" "$EHP" tls -m pcap -i "$HV" -w "$WORK/a.pcapng" -p 2147483600
if command -v setpriv >/dev/null; then
  expect_error "not root" "needs root" \
    setpriv --reuid=nobody --regid=nogroup --clear-groups "$EHP" tls -m pcap -i "$HV" -w /tmp/ehp-cli-nobody.pcapng
fi
# No BTF: hide /sys/kernel/btf in a private mount namespace.
expect_error "no BTF" "no BTF" unshare -m sh -c "mount -t tmpfs none /sys/kernel/btf && exec '$EHP' tls -m pcap -i '$HV' -w '$WORK/a.pcapng'"
# Issue 16: signs on counts, empty -Z, flags that mean nothing in the chosen mode, and messages
# that name the flag once.
for a in "-c -1" "-c -18446744073709551615" "--hold-ms -5" "--mapsize -4096" "-p -1" "-u -1" "-c +5"; do
  # shellcheck disable=SC2086
  # (timeout: a binary that takes the value would capture until stopped)
  expect_error "a sign on a count is refused: $a" "${a%% *}.*(sign|negative)" timeout -s INT 5 "$EHP" tls -m pcap -i "$HV" -w "$WORK/a.pcapng" $a
done
echo x >"$WORK/in.pcap"
expect_error "a sign on replay --repeat is refused" "--repeat.*(sign|negative)" "$EHP" replay "$WORK/in.pcap" -w "$WORK/r.pcapng" --repeat -1
expect_error "-Z with an empty user name is refused" "-Z" timeout -s INT 5 "$EHP" tls -m pcap -i "$HV" -w "$WORK/a.pcapng" -Z ""
expect_error "-m keylog -w X: -w means nothing there" "-w only applies to -m pcap" timeout -s INT 5 "$EHP" tls -m keylog -w "$WORK/a.pcapng"
expect_error "-m text -w X: -w means nothing there" "-w only applies to -m pcap" timeout -s INT 5 "$EHP" tls -m text -w "$WORK/a.pcapng"
expect_error "-m text --keylogfile X: means nothing there" "--keylogfile only applies" timeout -s INT 5 "$EHP" tls -m text --keylogfile "$WORK/k.log"
expect_error "--cpus names itself once" "^ecapture-hp: --cpus: CPU 999" "$EHP" tls -m pcap -i "$HV" -w "$WORK/a.pcapng" --cpus 999
twice() {  # no error line repeats the flag's name ("--cpus --cpus: ...")
  local err; err=$("$@" 2>&1 >/dev/null)
  echo "  [$err]"
  ! grep -qE -- '(^|[^-])(-[-a-zA-Z]+)[ :]+\2([ :]|$)' <<<"$err"
}
check "--cpus garbage: the flag named once" twice "$EHP" tls -m pcap -i "$HV" -w "$WORK/a.pcapng" --cpus x
check "-s out of range: the flag named once" twice "$EHP" tls -m pcap -i "$HV" -w "$WORK/a.pcapng" -s 10
check "--mapsize not a power of two: the flag named once" twice "$EHP" tls -m pcap -i "$HV" -w "$WORK/a.pcapng" --mapsize 5
check "-c garbage: the flag named once" twice "$EHP" tls -m pcap -i "$HV" -w "$WORK/a.pcapng" -c x
check "no output file from failed runs" test ! -e "$WORK/a.pcapng"
check "no tc filter left on $HV ingress" test -z "$(tc filter show dev "$HV" ingress)"
check "no clsact left on $HV" bash -c "! tc qdisc show dev '$HV' | grep -q clsact"
finish
