#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Soak test: MINUTES (default 10) of mixed TLS and UDP load through a live capture.
#   EHP=build/ecapture-hp tools/soak.sh [MINUTES]
# Load, all over a veth into a namespace (nothing leaves the host):
#   - 2 curl loops (TLS 1.3 and TLS 1.2, a new connection per request) and 1 python urllib loop
#     against a python HTTPS server in the namespace, every request with a unique URI;
#   - UDP from the namespace at SOAK_UDP_PPS (default 2000) packets/s of 200 bytes.
# (tshark is told that 8443 is TLS: its heuristics otherwise take the odd session for IRC or AMS.)
# RSS of the capture is sampled every 10 s. Pass criteria:
#   zero userspace loss (ring drops, hold-back overflow, writer failures all 0; every packet the
#   engine took from the rings is in the file; every UDP datagram sent is in it), every request
#   made decrypts from the file alone,
#   the file is valid for tshark, tcpdump and capinfos, exit 0 on SIGINT, RSS bounded (max below
#   SOAK_RSS_LIMIT_MB, default 512, and the second half no more than 64 MiB above the first half).
set -u
MINUTES=${1:-10}
[[ $MINUTES =~ ^[0-9]+$ && $MINUTES -ge 1 ]] || { echo "usage: $0 [MINUTES>=1]"; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
EHP=${EHP:-$HERE/../build/ecapture-hp}
TAG=soak
source "$HERE/../tests/e2e/faults_lib.sh"
UDP_PPS=${SOAK_UDP_PPS:-2000}
RSS_LIMIT_MB=${SOAK_RSS_LIMIT_MB:-512}
DURATION_S=$((MINUTES * 60))

setup_veth 121
make_cert
OUT=$WORK/soak.pcapng
export SSLKEYLOGFILE=$WORK/client_keys.log   # for diagnosis only: tshark is never given it
start_ehp "$WORK/ehp.log" tls -m pcap -i "$HV" -w "$OUT" || exit 1
start_py_https 8443 || { echo "python https failed"; exit 1; }
echo "soak: ${MINUTES} min, UDP ${UDP_PPS} pps, capture pid $EHP_PID, work dir $WORK"

# RSS sampler
(
  t0=$SECONDS
  while kill -0 "$EHP_PID" 2>/dev/null; do
    r=$(rss_kb "$EHP_PID"); [[ -n $r ]] && echo "$((SECONDS - t0)) $r"
    sleep 10
  done
) >"$WORK/rss.log" &
SAMPLER=$!

END=$((SECONDS + DURATION_S))
curl_loop() {  # NAME curl-args...
  local name=$1; shift
  local i=0
  while ((SECONDS < END)); do
    i=$((i + 1))
    curl -sk --max-time 10 -o /dev/null "$@" "https://$PEER_IP:8443/$name-$i" && echo "/$name-$i"
  done >"$WORK/made.$name"
}
curl_loop c13 --tlsv1.3 &
L1=$!
curl_loop c12 --tlsv1.2 --tls-max 1.2 &
L2=$!
cat >"$WORK/pyloop.py" <<'PY'
import ssl, sys, time, urllib.request
ip, end = sys.argv[1], time.time() + float(sys.argv[2])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
i = 0
while time.time() < end:
    i += 1
    uri = f"/py-{i}"
    try:
        urllib.request.urlopen(f"https://{ip}:8443{uri}", context=ctx, timeout=10).read()
        print(uri, flush=True)
        time.sleep(0.02)
    except Exception as e:
        print(f"# {uri} failed: {e}", file=sys.stderr)
PY
python3 "$WORK/pyloop.py" "$PEER_IP" "$DURATION_S" >"$WORK/made.py" 2>"$WORK/pyloop.err" &
L3=$!
udp_gen "$HOST_IP" 9999 "$DURATION_S" "$UDP_PPS" 200 >"$WORK/udp.out" &
L4=$!
wait $L1 $L2 $L3 $L4
sleep 1   # the last FIN/ACKs pass TC
stop_ehp
kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null

cat "$WORK"/made.* | sort -u >"$WORK/made.txt"
nmade=$(wc -l <"$WORK/made.txt")
echo "--- capture log (last lines)"; grep -v "^ecapture-hp: tracing" "$WORK/ehp.log" | tail -4
echo "--- RSS samples (s KiB)"; tr '\n' ';' <"$WORK/rss.log"; echo

check "ecapture-hp exits 0 on SIGINT" test "$EHP_RC" -eq 0
check "file is valid (tshark, tcpdump, capinfos)" pcap_valid "$OUT"
recv=$(summary_field "$WORK/ehp.log" "Packets received/dropped on interface '[^']*': ([0-9]+)/")
ringdrop=$(summary_field "$WORK/ehp.log" "Packets received/dropped on interface '[^']*': [0-9]+/([0-9]+)")
written=$(summary_field "$WORK/ehp.log" "ecapture-hp: ([0-9]+) packets written")
overflow=$(summary_field "$WORK/ehp.log" "on overflow ([0-9]+)")
wfail=$(summary_field "$WORK/ehp.log" "writer=([0-9]+)")
infile=$(pkt_count "$OUT")
check "no ring drops (${ringdrop:-?})" test "${ringdrop:-1}" -eq 0
check "no hold-back overflow releases (${overflow:-?})" test "${overflow:-1}" -eq 0
check "no writer failures (${wfail:-0})" test "${wfail:-0}" -eq 0
check "every packet taken from the rings was written (${recv:-?} == ${written:-?})" test "${recv:-x}" = "${written:-y}"
check "the file holds every written packet (${infile} == ${written:-?})" test "$infile" = "${written:-y}"
tshark -r "$OUT" -d tcp.port==8443,tls -Y "http.request || (udp.dstport == 9999 && !icmp)" -T fields -e http.request.uri \
  -e udp.dstport 2>/dev/null >"$WORK/fields.txt"
awk -F'\t' '$1 != "" {print $1}' "$WORK/fields.txt" | sort -u >"$WORK/seen.txt"
udp_in_file=$(awk -F'\t' '$2 == "9999"' "$WORK/fields.txt" | wc -l)
udp_sent=$(sed -n 's/sent=//p' "$WORK/udp.out")
check "every UDP datagram sent is in the file (${udp_in_file} of ${udp_sent:-?})" test "$udp_in_file" = "${udp_sent:-x}"
missing=$(comm -23 "$WORK/made.txt" "$WORK/seen.txt" | wc -l)
comm -23 "$WORK/made.txt" "$WORK/seen.txt" | head -5 | sed 's/^/  not decrypted: /'
check "every TLS request made (${nmade}) decrypts from the file alone (missing ${missing})" \
  test "$nmade" -gt 0 -a "$missing" -eq 0
pcapng_blocks "$OUT" >"$WORK/blocks.txt"; cat "$WORK/blocks.txt"
check "ISB present with counts" grep -q "isb if=0 ifrecv=${written:-x} " "$WORK/blocks.txt"
rss_ok() {
  awk -v lim=$((RSS_LIMIT_MB * 1024)) '
    { t[NR] = $1; r[NR] = $2; if ($2 > max) max = $2 }
    END {
      if (NR < 2) { print "  too few RSS samples"; exit 1 }
      h = int(NR / 2); for (i = 1; i <= NR; i++) if (i <= h) { if (r[i] > m1) m1 = r[i] } else if (r[i] > m2) m2 = r[i]
      printf "  RSS KiB: first %d, max %d, max 1st half %d, max 2nd half %d, last %d (%d samples)\n", r[1], max, m1, m2, r[NR], NR
      exit !(max <= lim && m2 <= m1 + 65536)
    }' "$WORK/rss.log"
}
check "RSS bounded (<= ${RSS_LIMIT_MB} MiB, no growth over 64 MiB in the 2nd half)" rss_ok
echo "RESULT minutes=$MINUTES requests=$nmade udp_sent=${udp_sent:-?} received=${recv:-?} written=${written:-?}" \
     "in_file=$infile ring_drops=${ringdrop:-?} file_bytes=$(stat -c %s "$OUT")"
finish
