#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 5, rotation (-b): TLS traffic across several rotations -- keep-alive sessions whose
# requests span files, plus new sessions -- then every rotated file, read ON ITS OWN, must:
#   - read cleanly with tshark and tcpdump, start with its own SHB + IDB and end with an ISB;
#   - decrypt every HTTP request whose TLS record it holds (no keylog given to tshark);
#   - be named prefix_NNNNN_YYYYmmddHHMMSS.pcapng (dumpcap's scheme), numbered 1, 2, 3...
# and -b files:N must keep only the newest N files.
TAG=p11rot
source "$(dirname "$0")/operator_common.sh"
setup_veth 112
make_cert
start_py_https 8443 || { echo "python https failed"; exit 1; }

# check_file F: prints "requests=<client app-data records> decrypted=<http requests>" and fails if
# the file does not read or does not stand alone.
check_file() {
  local f=$1
  tshark -r "$f" -q 2>"$WORK/ts.err" || { echo "  tshark cannot read $f: $(head -1 "$WORK/ts.err")"; return 1; }
  tcpdump -r "$f" >/dev/null 2>"$WORK/td.err" || { echo "  tcpdump cannot read $f: $(head -1 "$WORK/td.err")"; return 1; }
  local blocks
  blocks=$(tshark -X read_format:"MIME Files Format" -r "$f" -V 2>/dev/null | sed -nE 's/^ *Block: (.* Block).*/\1/p' | uniq)
  [[ $(head -1 <<<"$blocks") == "Section Header Block" ]] || { echo "  $f does not start with an SHB"; return 1; }
  [[ $(sed -n 2p <<<"$blocks") == "Interface Description Block" ]] || { echo "  $f has no IDB after its SHB"; return 1; }
  [[ $(tail -1 <<<"$blocks") == "Interface Statistics Block" ]] || { echo "  $f does not end with an ISB"; return 1; }
  return 0
}
# Requests a file holds: client->server TLS application-data records (one per request here),
# against the HTTP requests tshark decrypts from that file alone.
count_records() { tshark -r "$1" -Y "tls.record.content_type == 23 && tcp.dstport == 8443" -T fields -e tls.record.content_type 2>/dev/null | tr ',' '\n' | grep -c 23; }
count_requests() { tshark -r "$1" -Y http.request -T fields -e http.request.uri 2>/dev/null | grep -c .; }

traffic() {  # two keep-alive sessions spanning rotations, plus new sessions every 0.4 s
  keepalive_client "$PEER_IP" 8443 "ka$1" 14 0.5 >"$WORK/ka$1.a.txt" &
  local k1=$!
  sleep 0.2
  keepalive_client "$PEER_IP" 8443 "kb$1" 10 0.7 >"$WORK/ka$1.b.txt" &
  local k2=$!
  for i in $(seq 1 16); do
    curl -sk --max-time 10 -o /dev/null "https://$PEER_IP:8443/new$1-$i" || echo "curl new$1-$i failed"
    sleep 0.4
  done
  wait $k1 $k2
}

verify_set() {  # verify_set LABEL FILE...
  local label=$1; shift
  local bad=0 undecrypted=0 total_req=0 total_rec=0 f rec req
  for f in "$@"; do
    check_file "$f" || bad=$((bad + 1))
    rec=$(count_records "$f"); req=$(count_requests "$f")
    total_rec=$((total_rec + rec)); total_req=$((total_req + req))
    echo "  $(basename "$f"): $rec request records, $req decrypted"
    ((req < rec)) && undecrypted=$((undecrypted + rec - req))
  done
  check "$label: every file reads with tshark and tcpdump, SHB+IDB first, ISB last" test "$bad" -eq 0
  check "$label: every request decrypts from the file that holds it ($total_req/$total_rec)" \
    test "$undecrypted" -eq 0 -a "$total_rec" -gt 0
}

# 1. -b duration:2, keep everything.
D1=$WORK/dur
mkdir -p "$D1"
start_ehp "$WORK/ehp1.log" tls -m pcap -i "$HV" -w "$D1/cap.pcapng" -b duration:2 tcp port 8443 || exit 1
traffic 1
sleep 0.3
stop_ehp
check "duration run exits 0" test "$EHP_RC" -eq 0
mapfile -t F1 < <(ls "$D1"/*.pcapng | sort)
echo "  duration run: ${#F1[@]} files"
check "duration:2 over ~8 s of traffic gives >= 3 files (${#F1[@]})" test "${#F1[@]}" -ge 3
names_ok=1; n=1
for f in "${F1[@]}"; do
  [[ $(basename "$f") =~ ^cap_([0-9]{5})_[0-9]{14}\.pcapng$ ]] && ((10#${BASH_REMATCH[1]} == n)) || { echo "  bad name/sequence: $f"; names_ok=0; }
  n=$((n + 1))
done
check "names follow prefix_NNNNN_YYYYmmddHHMMSS.pcapng, numbered from 1" test $names_ok -eq 1
verify_set "duration" "${F1[@]}"
all_uris=$(cat "$WORK"/ka1.*.txt | sort -u)
seen=$(for f in "${F1[@]}"; do tshark -r "$f" -Y http.request -T fields -e http.request.uri 2>/dev/null; done | sort -u)
missing=$(comm -23 <(echo "$all_uris") <(echo "$seen") | grep -c .)
check "every keep-alive request answered shows decrypted in some file (missing $missing)" test "$missing" -eq 0
# The hard case: a keep-alive session whose handshake is two files back still decrypts in file 3+.
late=0
for f in "${F1[@]:2}"; do
  tshark -r "$f" -Y 'http.request.uri matches "^/ka1-1[0-3]$"' -T fields -e http.request.uri 2>/dev/null | grep -q . && late=$((late + 1))
done
check "late requests of a keep-alive session decrypt in a later file on its own ($late file(s))" test "$late" -ge 1
carried=$(tshark -r "${F1[2]}" -Y 'frame.comment contains "carried over"' 2>/dev/null | grep -c .)
check "the open sessions' earlier packets are carried into file 3, marked in their comment ($carried)" test "$carried" -gt 0

# 2. -b filesize:40 -b files:3: a ring of 3 files.
D2=$WORK/ring
mkdir -p "$D2"
start_ehp "$WORK/ehp2.log" tls -m pcap -i "$HV" -w "$D2/ring.pcapng" -b filesize:40 -b files:3 tcp port 8443 || exit 1
traffic 2
sleep 0.3
stop_ehp
check "ring run exits 0" test "$EHP_RC" -eq 0
mapfile -t F2 < <(ls "$D2"/*.pcapng | sort)
last=$(basename "${F2[-1]}" | sed -E 's/^ring_0*([0-9]+)_.*/\1/')
echo "  ring run: ${#F2[@]} files kept, last is number $last"
check "files:3 keeps exactly 3 files" test "${#F2[@]}" -eq 3
check "... and the ring rotated past 3 (last file number $last > 3)" test "$last" -gt 3
first_kept=$(basename "${F2[0]}" | sed -E 's/^ring_0*([0-9]+)_.*/\1/')
check "... the kept files are the newest ($first_kept..$last)" test "$first_kept" -eq $((last - 2))
verify_set "filesize ring" "${F2[@]}"
# -b filesize counts the bytes after the carried part: a rotated file is 40 kB of new data, plus
# its headers, pending/carried DSBs and carried packets, plus at most one packet past the limit.
size_bad=0
for f in "${F2[@]::${#F2[@]}-1}"; do
  s=$(stat -c %s "$f")
  carried=$(tshark -r "$f" -Y 'frame.comment contains "carried over"' -T fields -e frame.cap_len 2>/dev/null | awk '{b += $1 + 200} END {print b + 0}')
  dsbs=$(tshark -X read_format:"MIME Files Format" -r "$f" -V 2>/dev/null | grep -c "Block: Decryption Secrets Block")
  limit=$((40000 + carried + dsbs * 1200 + 2000 + 66000))
  echo "  $(basename "$f"): $s bytes ($carried carried, $dsbs DSBs, limit $limit)"
  ((s >= 40000 && s <= limit)) || size_bad=1
done
check "rotated ring files hold 40 kB of new data (>= 40000, <= 40000 + carried + one packet)" test $size_bad -eq 0
finish
