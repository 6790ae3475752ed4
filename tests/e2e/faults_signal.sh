#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# SIGINT and SIGTERM under load (a UDP flood from the namespace plus TLS requests): exit 0,
# everything buffered written, ISBs with counts, the file valid for tshark and tcpdump, and the
# packet count in the file equal to the engine's "packets written" (and to the ISB's ifrecv).
# Also: no TLS secret ever reaches stderr at the default verbosity (the clients' SSLKEYLOGFILE
# gives the secrets to look for; they must be in the file's DSBs instead).
TAG=sig
source "$(dirname "$0")/faults_lib.sh"
setup_veth 123
make_cert
start_py_https 8443 || { echo "python https failed"; exit 1; }
export SSLKEYLOGFILE=$WORK/client_keys.log

run_under_load() {  # SIGNAL
  local sig=$1 out=$WORK/$1.pcapng log=$WORK/$1.log
  start_ehp "$log" tls -m pcap -i "$HV" -w "$out" || return 1
  udp_gen "$HOST_IP" 9999 30 0 64 >/dev/null &
  local gen=$!
  BG_PIDS+=("$gen")
  (
    i=0
    while :; do i=$((i + 1)); curl -sk --max-time 5 -o /dev/null "https://$PEER_IP:8443/$sig-$i"; done
  ) &
  local tls=$!
  BG_PIDS+=("$tls")
  # Signal while the load is at full speed: once the stats line shows 50k packets taken.
  busy() { grep -qE "^ecapture-hp: ([5-9][0-9]{4}|[0-9]{6,}) pkts" "$log"; }
  WAIT_S=40 wait_for busy || echo "  (load stayed below 50k packets)"
  kill -"$sig" "$EHP_PID"
  wait "$EHP_PID"; EHP_RC=$?
  kill "$gen" "$tls" 2>/dev/null; wait "$gen" "$tls" 2>/dev/null
  check "SIG$sig under load: exit 0" test "$EHP_RC" -eq 0
  check "SIG$sig: file valid (tshark, tcpdump, capinfos)" pcap_valid "$out"
  local written infile recv blocks
  written=$(summary_field "$log" "ecapture-hp: ([0-9]+) packets written")
  recv=$(summary_field "$log" "Packets received/dropped on interface '[^']*': ([0-9]+)/")
  infile=$(pkt_count "$out")
  check "SIG$sig: packets in file == engine's written count (${infile} == ${written:-?})" test "$infile" = "${written:-x}"
  check "SIG$sig: everything taken from the rings was written (${recv:-?} == ${written:-?})" test "${recv:-x}" = "${written:-y}"
  blocks=$(pcapng_blocks "$out")
  echo "  $blocks" | head -2
  check "SIG$sig: ISB with ifrecv == usrdeliv == written" grep -q "isb if=0 ifrecv=$written ifdrop=[0-9]* usrdeliv=$written" <<<"$blocks"
  # tshark's own view of the ISB (its MIME reader takes files up to 50 MB; the load is sized under it)
  if (($(stat -c %s "$out") < 50000000)); then
    echo "  file $(stat -c %s "$out") bytes"
    tshark -o gui.max_tree_items:100000000 -X read_format:"MIME Files Format" -r "$out" -V 2>/dev/null \
      | grep -E "Interface Statistics Block|Number of" >"$WORK/$sig.mime"
    check "SIG$sig: tshark shows the ISB with the written count" \
      grep -q "Number of Received Packets = $written\$" "$WORK/$sig.mime"
  else
    echo "  file over 50 MB: tshark's MIME view skipped (the block walker above checked the ISB)"
  fi
  check "SIG$sig: the TLS requests made under load decrypt" \
    bash -c "tshark -r '$out' -d tcp.port==8443,tls -Y http.request -T fields -e http.request.uri 2>/dev/null | grep -q '^/$sig-'"
}
run_under_load INT
run_under_load TERM

# Secrets in the log: every hex secret the clients logged must be absent from stderr.
secrets_not_logged() {
  local n=0 leaked=0 s
  for s in $(awk 'NF == 3 {print $3}' "$SSLKEYLOGFILE" | sort -u); do
    n=$((n + 1))
    grep -qi "$s" "$WORK/INT.log" "$WORK/TERM.log" && leaked=$((leaked + 1))
  done
  echo "  $n client secrets checked, $leaked found in stderr"
  ((n > 0 && leaked == 0))
}
check "no TLS secret appears on stderr at the default verbosity" secrets_not_logged
first=$(awk 'NF == 3 {print $3; exit}' "$SSLKEYLOGFILE")
check "...while the secrets are in the file's DSBs" \
  grep -qai "${first:-nothing}" "$WORK/INT.pcapng" "$WORK/TERM.pcapng"
check "nothing left on $HV" no_tc_left "$HV"
finish
