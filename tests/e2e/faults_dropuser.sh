#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# -Z USER: privileges are dropped after attach, as tcpdump does. The process runs as that user
# (every thread: /proc/PID/task/*/status Uid/Gid), keeps only CAP_NET_ADMIN (for removing its TC
# filters at exit; bounding set too), cannot get root back, the output belongs to that user
# (mode 0600), the capture still works and decrypts, and nothing is left behind at exit.
TAG=dropu
source "$(dirname "$0")/faults_lib.sh"
setup_veth 127
make_cert
start_py_https 8443 || { echo "python https failed"; exit 1; }
OUT=$WORK/out.pcapng
USER_NAME=nobody
UID_N=$(id -u $USER_NAME)
GID_N=$(id -g $USER_NAME)

start_ehp "$WORK/ehp.log" tls -m pcap -i "$HV" -w "$OUT" -Z $USER_NAME || exit 1
ids_ok() {
  local t bad=0
  for t in /proc/"$EHP_PID"/task/*; do
    grep -qP "^Uid:\t$UID_N\t$UID_N\t$UID_N\t$UID_N$" "$t/status" || bad=1
    grep -qP "^Gid:\t$GID_N\t$GID_N\t$GID_N\t$GID_N$" "$t/status" || bad=1
  done
  ((bad == 0))
}
grep -E "^(Uid|Gid|Groups|CapPrm|CapEff|CapBnd):" "/proc/$EHP_PID/status" | sed 's/^/  /'
check "every thread runs as $USER_NAME (uid $UID_N, gid $GID_N; real, effective, saved, fs)" ids_ok
check "supplementary groups are $USER_NAME's only" \
  bash -c "[[ \$(awk '/^Groups:/ {\$1=\"\"; print}' /proc/$EHP_PID/status | xargs) == \"\$(id -G $USER_NAME | xargs)\" ]]"
check "only CAP_NET_ADMIN is left (permitted, effective, bounding)" \
  bash -c "grep -qP '^CapPrm:\t0000000000001000$' /proc/$EHP_PID/status && grep -qP '^CapEff:\t0000000000001000$' /proc/$EHP_PID/status && grep -qP '^CapBnd:\t0000000000001000$' /proc/$EHP_PID/status"
check "the output file belongs to $USER_NAME" test "$(stat -c %u:%g "$OUT")" = "$UID_N:$GID_N"
check "the output file is mode 0600" test "$(stat -c %a "$OUT")" = 600
curl -sk --max-time 10 -o /dev/null "https://$PEER_IP:8443/as-nobody" || echo "  curl failed"
sleep 0.5   # let the last FIN/ACKs pass TC
stop_ehp
check "exit 0" test "$EHP_RC" -eq 0
check "file valid" pcap_valid "$OUT"
check "the request decrypts from the file alone" \
  bash -c "tshark -r '$OUT' -d tcp.port==8443,tls -Y http.request -T fields -e http.request.uri 2>/dev/null | grep -qx /as-nobody"
check "nothing left on $HV (filters removed with the kept CAP_NET_ADMIN)" no_tc_left "$HV"

# keylog mode: the key file belongs to the user too
start_ehp "$WORK/ehp2.log" tls -m keylog --keylogfile "$WORK/keys.log" -Z $USER_NAME || exit 1
check "-m keylog: runs as $USER_NAME with no capability left" \
  bash -c "grep -qP '^Uid:\t$UID_N\t' /proc/$EHP_PID/status && grep -qP '^CapEff:\t0000000000000000$' /proc/$EHP_PID/status"
check "-m keylog: the key file belongs to $USER_NAME" test "$(stat -c %u "$WORK/keys.log")" = "$UID_N"
stop_ehp
check "-m keylog: exit 0" test "$EHP_RC" -eq 0

# an unknown user: one clear line before anything is attached
err=$("$EHP" tls -m pcap -i "$HV" -w "$WORK/x.pcapng" -Z p12-no-such-user 2>&1 >/dev/null); rc=$?
echo "  [$err]"
check "-Z unknown user: exit != 0, one line naming the user" \
  bash -c "[[ $rc -ne 0 && \$(grep -c . <<<'$err') -eq 1 ]] && grep -q p12-no-such-user <<<'$err'"
check "-Z unknown user: no output file, nothing attached" bash -c "[[ ! -e '$WORK/x.pcapng' ]] && $(declare -f no_tc_left); no_tc_left '$HV'"
finish
