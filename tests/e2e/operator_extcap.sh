#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 5, Wireshark extcap: ecapture-hp answers the extcap protocol, real tshark 4.0 finds it in
# the personal extcap folder (Wireshark 4.0 looks in ~/.config/wireshark/extcap; 4.1+ moved it to
# ~/.local/lib/wireshark/extcap) and `tshark -i ecapture-hp_<IF> -a duration:N -Y http` shows the
# decrypted requests of TLS traffic flowing meanwhile. Then `cmake --install` with DESTDIR places
# the binary, the man page and the extcap link.
TAG=p11ext
source "$(dirname "$0")/operator_common.sh"
setup_veth 115
make_cert
start_py_https 8443 || { echo "python https failed"; exit 1; }
export HOME=$WORK/home
mkdir -p "$HOME/.config/wireshark/extcap"
ln -s "$EHP" "$HOME/.config/wireshark/extcap/ecapture-hp"
IFX=ecapture-hp_$HV

# 1. The protocol itself.
"$EHP" --extcap-interfaces >"$WORK/ifs.txt" 2>&1
check "--extcap-interfaces: exit 0, extcap version line" grep -q '^extcap {version=' "$WORK/ifs.txt"
check "--extcap-interfaces lists $IFX" grep -qF "interface {value=$IFX}" "$WORK/ifs.txt"
check "--extcap-dlts gives Ethernet for $HV" bash -c "'$EHP' --extcap-dlts --extcap-interface '$IFX' | grep -q '^dlt {number=1}'"
check "--extcap-config offers a capture filter-free, valid arg list" bash -c "'$EHP' --extcap-config --extcap-interface '$IFX' | grep -q '^arg {number=0}{call=--hold-ms}'"
check "--hold-ms garbage in an extcap capture is refused" bash -c "! '$EHP' --capture --fifo /dev/null --extcap-interface '$IFX' --hold-ms x 2>/dev/null"
check "unknown extcap interface: non-zero exit" bash -c "! '$EHP' --extcap-dlts --extcap-interface nosuch 2>/dev/null"
# Issue 16: an interface that does not exist is refused by every call, not only --capture;
# Wireshark's filter check (--extcap-capture-filter without --capture) answers exit 0 for a
# valid filter and the compiler's message with a non-zero exit for an invalid one.
check "--extcap-dlts of a nonexistent interface: non-zero exit" \
  bash -c "! '$EHP' --extcap-dlts --extcap-interface ecapture-hp_nonexistent >/dev/null 2>&1"
check "--extcap-config of a nonexistent interface: non-zero exit" \
  bash -c "! '$EHP' --extcap-config --extcap-interface ecapture-hp_nonexistent >/dev/null 2>&1"
valid_out=$("$EHP" --extcap-interface "$IFX" --extcap-capture-filter "tcp port 8443" 2>&1); valid_rc=$?
check "filter check: a valid filter gives exit 0 and no message (rc=$valid_rc, [$valid_out])" \
  test "$valid_rc" -eq 0 -a -z "$valid_out"
bad_out=$("$EHP" --extcap-interface "$IFX" --extcap-capture-filter "tcp prt 8443" 2>/dev/null); bad_rc=$?
check "filter check: an invalid filter gives a non-zero exit and the compiler's message on stdout (rc=$bad_rc, [$bad_out])" \
  bash -c "[[ $bad_rc -ne 0 && '$bad_out' == *'syntax error'* ]]"
check "tshark -D lists $IFX" bash -c "tshark -D 2>/dev/null | grep -qF '$IFX'"

# 2. A live capture driven by tshark through the FIFO, with a capture filter.
tshark -l -i "$IFX" -f "tcp port 8443" -a duration:12 -T fields -e frame.protocols -e http.request.uri \
  >"$WORK/tshark.all" 2>"$WORK/tshark.err" &
TS_PID=$!; BG_PIDS+=($TS_PID)
# Ready when the extcap child has attached its TC hooks.
WAIT_S=10 wait_for bash -c "tc filter show dev '$HV' ingress | grep -q ." || { echo "extcap capture did not attach"; cat "$WORK/tshark.err"; }
CHILD=$(pgrep -f "ecapture-hp.*--extcap-interface.$IFX" | head -1)
check "tshark started the extcap capture child (pid ${CHILD:-none})" test -n "$CHILD"
sleep 0.3   # the uprobes attach right after TC (no observable sentinel from inside tshark)
ping -c 3 -i 0.2 "$PEER_IP" >/dev/null 2>&1   # not port 8443: the capture filter keeps it out
for i in 1 2 3 4 5; do curl -sk --max-time 5 -o /dev/null "https://$PEER_IP:8443/extcap-$i" || echo "curl $i failed"; done
keepalive_client "$PEER_IP" 8443 ext-ka 3 0.2 >/dev/null
seen_all() { cut -f2 "$WORK/tshark.all" | grep . >"$WORK/tshark.out"; for u in /extcap-{1..5} /ext-ka-{0..2}; do grep -qxF "$u" "$WORK/tshark.out" || return 1; done; }
WAIT_S=8 wait_for seen_all
seen=$(grep -c . "$WORK/tshark.out")
check "tshark -i $IFX shows every decrypted request live ($seen/8)" seen_all
wait "$TS_PID"; TS_RC=$?
check "--extcap-capture-filter applied in the kernel: no ICMP in the capture" bash -c "! grep -q icmp '$WORK/tshark.all'"
check "... while the TLS packets are there ($(grep -c tls "$WORK/tshark.all") TLS frames)" grep -q tls "$WORK/tshark.all"
check "tshark ends its -a duration capture with exit 0 (rc=$TS_RC)" test "$TS_RC" -eq 0
check "tshark reports no extcap error" bash -c "! grep -qiE 'error|extcap' '$WORK/tshark.err'"
[[ $FAIL -eq 0 ]] || { echo "tshark stderr:"; sed 's/^/  /' "$WORK/tshark.err"; }
child_gone() { [[ -z $(tc filter show dev "$HV" ingress) ]] && ! kill -0 "${CHILD:-0}" 2>/dev/null; }
check "the extcap child stopped and removed its TC hooks" wait_for child_gone

# 3. Install into a staging root.
BUILD=$(cd "$(dirname "$EHP")" && pwd)
if [[ -f $BUILD/cmake_install.cmake ]]; then
  DESTDIR=$WORK/stage cmake --install "$BUILD" --prefix /opt/ehp >"$WORK/install.log" 2>&1
  check "cmake --install with DESTDIR succeeds" test $? -eq 0
  check "binary installed in PREFIX/sbin" test -x "$WORK/stage/opt/ehp/sbin/ecapture-hp"
  check "man page installed" test -f "$WORK/stage/opt/ehp/share/man/man8/ecapture-hp.8"
  EXTDIR=$(sed -nE 's/^Extcap path:[[:space:]]*//p' < <(HOME=/nonexistent tshark -G folders 2>/dev/null))
  link=$WORK/stage${EXTDIR:-/usr/lib/x86_64-linux-gnu/wireshark/extcap}/ecapture-hp
  check "extcap link placed in Wireshark's extcap folder ($EXTDIR)" test -L "$link"
  check "extcap link points at the installed binary (not the staging root)" test "$(readlink "$link")" = /opt/ehp/sbin/ecapture-hp
  check "the man page renders" bash -c "man -l '$WORK/stage/opt/ehp/share/man/man8/ecapture-hp.8' 2>/dev/null | grep -q 'extcap'"
  check "nothing written outside DESTDIR" test ! -e /opt/ehp
else
  echo "SKIP: no cmake_install.cmake next to $EHP"
fi
finish
