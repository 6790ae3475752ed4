#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 5, command line: every misuse of the operator flags gets exactly one clear stderr line and
# a non-zero exit, starts no capture (no tc hook, no output file); --version, --help and -D exit 0;
# and every flag `--help` shows is documented in docs/usage.md and the man page.
TAG=p11cli
source "$(dirname "$0")/operator_common.sh"
DOCS=$(cd "$(dirname "$0")/../../docs" && pwd)
setup_veth 116

# expect_error DESCRIPTION REGEX ARGS... : exactly one stderr line matching REGEX, exit != 0
expect_error() {
  local desc=$1 re=$2; shift 2
  local err rc lines
  err=$(timeout 20 "$@" 2>&1 >/dev/null); rc=$?
  lines=$(printf '%s' "$err" | grep -c .)
  if [[ $rc -ne 0 && $rc -ne 124 && $lines -eq 1 && $err =~ $re ]]; then
    echo "PASS: $desc  [$err]"; PASS=$((PASS+1))
  else
    echo "FAIL: $desc (rc=$rc, $lines lines): $err"; FAIL=$((FAIL+1))
  fi
}
O=$WORK/out.pcapng
T=(tls -m pcap -i "$HV" -w "$O")
expect_error "-b with -w -" "-b cannot be used with -w -" "$EHP" tls -m pcap -i "$HV" -w - -b duration:10
expect_error "-b files without size/duration" "files:N needs -b filesize:KB or -b duration:SEC" "$EHP" "${T[@]}" -b files:3
expect_error "-f and a trailing filter" "either with -f or as trailing arguments" "$EHP" "${T[@]}" -f "tcp port 443" udp
expect_error "-a without a value" "-a duration: expected KEY:VALUE" "$EHP" "${T[@]}" -a duration
expect_error "-a with a non-number" "-a duration:ten: 'ten' is not a number" "$EHP" "${T[@]}" -a duration:ten
expect_error "-a with a negative number" "is not a number" "$EHP" "${T[@]}" -a packets:-5
expect_error "-a with zero" "duration must be between 1 and" "$EHP" "${T[@]}" -a duration:0
expect_error "-a with an unknown key" "unknown condition 'files'" "$EHP" "${T[@]}" -a files:2
expect_error "-a with an overflowing number" "is not a number" "$EHP" "${T[@]}" -a packets:99999999999999999999999
expect_error "-b with an unknown key" "unknown condition 'packets'" "$EHP" "${T[@]}" -b packets:100
expect_error "-b with an empty value" "-b filesize:: '' is not a number" "$EHP" "${T[@]}" -b filesize:
expect_error "-b files:0" "files must be between 1 and" "$EHP" "${T[@]}" -b duration:5 -b files:0
expect_error "-c 0" "-c 0: the packet count must be at least 1" "$EHP" "${T[@]}" -c 0
expect_error "-c with a non-number" "-c" "$EHP" "${T[@]}" -c many
expect_error "-s out of range" "snaplen" "$EHP" "${T[@]}" -s 10
expect_error "--mapsize not a power of two" "--mapsize 100: must be a power of two" "$EHP" "${T[@]}" --mapsize 100
expect_error "--hold-ms 0" "--hold-ms must be between 1 and 600000" "$EHP" "${T[@]}" --hold-ms 0
expect_error "--cpus garbage" "--cpus" "$EHP" "${T[@]}" --cpus x-y
expect_error "-b with -m keylog" "-b only applies to -m pcap" "$EHP" tls -m keylog --keylogfile "$WORK/k.log" -b duration:5
expect_error "-c with -m text" "only apply to -m pcap" "$EHP" tls -m text -c 10
expect_error "-i with -m keylog" "-i is only used with -m pcap" "$EHP" tls -m keylog -i "$HV"
expect_error "a filter with -m keylog" "filter only applies to -m pcap" "$EHP" tls -m keylog tcp port 443
expect_error "-w with no value" "pcapfile" "$EHP" tls -m pcap -i "$HV" -w
if command -v script >/dev/null; then
  # script(1) gives the command a terminal as stdout; the error goes to its typescript.
  script -qec "'$EHP' tls -m pcap -i '$HV' -w -" /dev/null >"$WORK/tty.out" 2>&1; rc=$?
  check "-w - to a terminal is refused (rc=$rc)" bash -c "test $rc -ne 0 && grep -q 'standard output is a terminal' '$WORK/tty.out'"
fi
expect_error "no command" "a command is required" "$EHP"
expect_error "unknown top-level option" "--bogus" "$EHP" --bogus
expect_error "extcap capture without --fifo" "--capture needs --fifo" "$EHP" --capture --extcap-interface "ecapture-hp_$HV"
expect_error "extcap: unknown interface" "unknown interface" "$EHP" --extcap-dlts --extcap-interface "$HV"
check "no output file from the refused runs" test ! -e "$O"
check "no tc filter left on $HV" test -z "$(tc filter show dev "$HV" ingress)$(tc filter show dev "$HV" egress)"
check "no clsact left on $HV" bash -c "! tc qdisc show dev '$HV' | grep -q clsact"

# Information requests exit 0 and print to stdout.
check "--version exits 0 and prints the version" bash -c "'$EHP' --version | grep -qE '^ecapture-hp [0-9]+\.[0-9]+'"
check "--help exits 0 and names the commands" bash -c "'$EHP' --help | grep -q 'tls' "
check "tls --help exits 0 and shows the dumpcap flags" bash -c "'$EHP' tls --help | grep -q -- '-b TEXT'"
check "-D exits 0 and lists $HV dumpcap-style (N. name)" bash -c "'$EHP' -D | grep -qE '^[0-9]+\. $HV\$'"

# The documentation matches the real flags: every option --help prints is in usage.md and the man page.
flags=$("$EHP" tls --help | grep -oE '^  (-[A-Za-z],)?--?[A-Za-z][A-Za-z-]*' | sed -E 's/^  //; s/,/\n/' | grep -vxE -- '-h|--help')
flags+=$'\n'$("$EHP" --help | grep -oE '^  (-[A-Za-z],)?--?[A-Za-z][A-Za-z-]*' | sed -E 's/^  //; s/,/\n/' | grep -vxE -- '-h|--help')
undoc_md=(); undoc_man=()
while read -r f; do
  [[ -z $f ]] && continue
  grep -qE -- "(^|[^A-Za-z-])$f([^A-Za-z-]|\$)" "$DOCS/usage.md" || undoc_md+=("$f")
  man_f=${f//-/\\\\-}   # the man page escapes dashes: \-
  grep -qE -- "(^|[^A-Za-z-])($f|$man_f)([^A-Za-z-]|\$)" "$DOCS/ecapture-hp.8" || undoc_man+=("$f")
done <<<"$flags"
check "every flag of --help is in docs/usage.md (missing: ${undoc_md[*]:-none})" test "${#undoc_md[@]}" -eq 0
check "every flag of --help is in the man page (missing: ${undoc_man[*]:-none})" test "${#undoc_man[@]}" -eq 0
for e in --extcap-interfaces --extcap-dlts --extcap-config --fifo --extcap-capture-filter; do
  grep -qF -- "$e" "$DOCS/usage.md" && grep -qF -- "${e//-/\\-}" "$DOCS/ecapture-hp.8" || { echo "  undocumented: $e"; FAIL=$((FAIL+1)); }
done

# README: exactly the two quick-start commands, and every `ecapture-hp tls -m pcap` example parses
# (run against a missing interface, each must get as far as the interface check).
README=$DOCS/../README.md
qs=$(sed -n '/^## Quick start/,/^## /p' "$README" | grep -cE '^make ')
check "README quick start has exactly two commands (make demo, make test): $qs" \
  bash -c "test $qs -eq 2 && grep -q '^make demo' '$README' && grep -q '^make test' '$README'"
bad_ex=0; n_ex=0
while read -r ex; do
  args=${ex#ecapture-hp }; args=${args%%|*}; args=${args//\\/}
  # (-p must name a live process now: the uprobes are attached to it; this shell is one)
  args=$(sed -E "s/-i eth[0-9]/-i p11-nosuch0/g; s/-p [0-9]+/-p $$/g" <<<"$args")
  out=$(cd "$WORK" && eval "timeout 10 '$EHP' $args" 2>&1 >/dev/null | head -1)
  n_ex=$((n_ex + 1))
  [[ $out == *"unknown interface 'p11-nosuch0'"* ]] || { echo "  README example does not parse: $ex -> $out"; bad_ex=$((bad_ex + 1)); }
done < <(grep -oE '`ecapture-hp tls -m pcap[^`]*`' "$README" | tr -d '`')
check "every README pcap example parses ($n_ex examples)" test "$bad_ex" -eq 0 -a "$n_ex" -ge 8

# The design card's command line has no subcommand: `ecapture-hp --cpus 0-7 -i bond0` is the
# default capture (tls -m pcap). Here on one CPU of this machine, with traffic while it runs.
( sleep 0.7; ping -c 5 -i 0.2 -W 1 "$PEER_IP" >/dev/null 2>&1 ) &
dc_rc=0
(cd "$WORK" && timeout 20 "$EHP" --cpus 0 -i "$HV" -a duration:3 -q 2>"$WORK/dc.log") || dc_rc=$?
wait
dc_pkts=$(tshark -r "$WORK/ecapture_openssl.pcapng" -Y icmp 2>/dev/null | wc -l)
check "no subcommand: '--cpus 0 -i IF' captures to the default file, exit 0 (rc=$dc_rc, $dc_pkts ICMP)" \
  test "$dc_rc" -eq 0 -a "$dc_pkts" -ge 8
finish
