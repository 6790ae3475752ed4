#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make demo: a live capture of real TLS traffic, read back decrypted from the pcapng alone.
# A network namespace runs an HTTPS server (python ssl); curl (TLS 1.2 and 1.3) and python
# clients on the host talk to it over a veth while ecapture-hp captures that veth.
set -u
BUILD=${1:-build}
export EHP=$(cd "$BUILD" && pwd)/ecapture-hp
TAG=demo
source "$(dirname "$0")/../tests/e2e/lib.sh"
OUTDIR=$(pwd)/demo-out
mkdir -p "$OUTDIR"
OUT=$OUTDIR/demo.pcapng
setup_veth 40
make_cert
echo "== ecapture-hp tls -m pcap -i $HV -w $OUT tcp port 8443"
start_ehp "$WORK/ehp.log" tls -m pcap -i "$HV" -w "$OUT" tcp port 8443 || exit 1
start_py_https 8443 || { echo "demo: https server failed"; exit 1; }
echo "== clients: curl TLS 1.2, curl TLS 1.3 (AES-256), curl TLS 1.3 (ChaCha20), python urllib"
curl -sk -o /dev/null --tlsv1.2 --tls-max 1.2 "https://$PEER_IP:8443/hello-from-curl-tls12"
curl -sk -o /dev/null --tlsv1.3 --tls13-ciphers TLS_AES_256_GCM_SHA384 "https://$PEER_IP:8443/hello-from-curl-tls13-aes256"
curl -sk -o /dev/null --tlsv1.3 --tls13-ciphers TLS_CHACHA20_POLY1305_SHA256 "https://$PEER_IP:8443/hello-from-curl-tls13-chacha"
python3 - "$PEER_IP" <<'PY'
import ssl, sys, urllib.request
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
urllib.request.urlopen(f"https://{sys.argv[1]}:8443/hello-from-python", context=ctx, timeout=10).read()
PY
sleep 0.5
stop_ehp
cat "$WORK/ehp.log" | grep -v "^ecapture-hp: capturing"
echo
echo "== tshark -r $OUT -Y http   (no key log file given: the keys are inside the pcapng)"
tshark -r "$OUT" -Y http -T fields -e frame.number -e ip.src -e ip.dst -e tls.record.version \
  -e http.request.method -e http.request.uri -e http.response.code -e http.file_data -E header=y 2>/dev/null
echo
echo "== per-packet process attribution (frame.comment) of the first packets"
tshark -r "$OUT" -T fields -e frame.number -e frame.packet_flags_direction -e frame.comment -c 6 2>/dev/null
echo
n=$(tshark -r "$OUT" -Y http.request 2>/dev/null | wc -l)
echo "demo: $n decrypted requests; file: $OUT (mode $(stat -c %a "$OUT")); open it in Wireshark"
[[ $n -ge 4 ]]
