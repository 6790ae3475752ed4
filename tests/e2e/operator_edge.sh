#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 16, flags: -m pcap --keylogfile writes both the pcapng (with its DSBs) and a key log
# file that decrypts the same capture on its own; a key log file that cannot be written
# (/dev/full) is reported at the first failed write, with strerror, and stops the run with
# exit 1 (-m keylog and -m pcap alike), as ENOSPC on the pcapng does.
TAG=e16edge
source "$(dirname "$0")/faults_lib.sh"
setup_veth 161
make_cert
start_py_https 8443 || { echo "python https failed"; exit 1; }
three_requests() { for i in 1 2 3; do curl -sk --max-time 5 -o /dev/null "https://$PEER_IP:8443/$1-$i" || echo "curl $i failed"; done; }

# 1. pcap + key log file.
OUT=$WORK/both.pcapng KL=$WORK/both.keys
start_ehp "$WORK/both.log" tls -m pcap -i "$HV" -w "$OUT" --keylogfile "$KL" || exit 1
three_requests both
sleep 0.5
stop_ehp
check "-m pcap --keylogfile: exit 0 (rc=$EHP_RC)" test "$EHP_RC" -eq 0
check "the pcapng is valid" pcap_valid "$OUT"
reqs=$(tshark -r "$OUT" -Y http.request 2>/dev/null | wc -l)
check "the pcapng decrypts the 3 requests by its DSBs ($reqs)" test "$reqs" -eq 3
check "the key log file exists, mode 0600" test "$(stat -c %a "$KL" 2>/dev/null)" = 600
randoms=$(awk '{print $2}' "$KL" 2>/dev/null | sort -u | wc -l)
check "the key log file holds the 3 sessions ($randoms client randoms)" test "$randoms" -ge 3
editcap --discard-all-secrets "$OUT" "$WORK/nosecrets.pcapng" 2>/dev/null
plain=$(tshark -r "$WORK/nosecrets.pcapng" -Y http.request 2>/dev/null | wc -l)
withkl=$(tshark -r "$WORK/nosecrets.pcapng" -o "tls.keylog_file:$KL" -Y http.request 2>/dev/null | wc -l)
check "without its DSBs the capture decrypts nothing ($plain), with the key log file all 3 ($withkl)" \
  test "$plain" -eq 0 -a "$withkl" -eq 3
check "the summary names the key log file" grep -q "sessions' keys written to $KL" "$WORK/both.log"

# 2. /dev/full as the key log file: the first failed write stops the run, exit 1.
full_run() {  # LABEL ARGS...
  local label=$1; shift
  local log=$WORK/full-$label.log
  start_ehp "$log" "$@" || return 1
  curl -sk --max-time 5 -o /dev/null "https://$PEER_IP:8443/full-$label" || echo "curl failed"
  exited() { ! kill -0 "$EHP_PID" 2>/dev/null; }
  local t0=$SECONDS
  WAIT_S=5 wait_for exited
  if exited; then wait "$EHP_PID"; EHP_RC=$?; else echo "  still running: stopping it"; stop_ehp; EHP_RC=999; fi
  sed 's/^/  /' "$log"
  check "$label --keylogfile /dev/full: stops by itself within 5 s of the first session, exit 1 (rc=$EHP_RC)" \
    test "$EHP_RC" -eq 1
  check "$label: one error line with strerror" \
    test "$(grep -c '^ecapture-hp: writing /dev/full: No space left on device' "$log")" -eq 1
  check "$label: no error repeated at exit" bash -c "! grep -q 'writing /dev/full failed' '$log'"
  check "$label: the summary does not claim keys were written" bash -c "! grep -qE '[1-9][0-9]* sessions. keys written( |,)' '$log'"
}
full_run keylog tls -m keylog --keylogfile /dev/full
full_run pcap tls -m pcap -i "$HV" -w "$WORK/full.pcapng" --keylogfile /dev/full
check "pcap: the pcapng of the stopped run is valid" pcap_valid "$WORK/full.pcapng"
check "nothing left on $HV" no_tc_left "$HV"
finish
