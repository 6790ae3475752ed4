#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Captures real TLS + UDP traffic into a pcap, the input of the replay benchmarks
# (tools/bench.sh: ecapture-hp replay vs the pcapgo writer vs fio).
#
#   tools/gen/make-replay-input.sh BUILD_DIR OUT.pcap [SECONDS] [bulk|small]
#
# bulk (default, mean ~1.1 KB/packet):
# Traffic, across a veth pair between two private netns, captured by tcpdump on one end:
#   - HTTPS: openssl s_server -www in netns B; curl in netns A fetches it over and over with
#     fresh TLS 1.3 and TLS 1.2 sessions (handshakes, small records, ACKs);
#   - bulk TLS: nghttpd serving a 1 MiB file, h2load downloading it (full-size segments);
#   - UDP: udpgen, 64-B and 1400-B frames, 1 sender, short bursts.
# small (mean ~0.3 KB/packet, like the "mixed TLS packets" eCapture's writer figure is quoted for):
#   the same handshake loop; h2load fetching a 4 KiB file many times (small records, ACKs); UDP
#   64-B frames only.
# gso_max_segs 1 on both veths keeps TCP segments at MTU size, as a NIC capture shows them
# (veth otherwise passes 64 KiB GSO super-packets, which would flatter any writer).
# Prints "make-replay-input: N packets, B bytes (mean M B) in OUT". Needs root.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../bench-lib.sh"
BUILD=${1:?usage: make-replay-input.sh BUILD_DIR OUT.pcap [SECONDS]}
OUTF=${2:?usage: make-replay-input.sh BUILD_DIR OUT.pcap [SECONDS]}
SECS=${3:-3}
MIX=${4:-bulk}
[[ $MIX == bulk || $MIX == small ]] || { echo "make-replay-input: mix is bulk or small" >&2; exit 2; }
GEN=$BUILD/udpgen
TAG=${EHP_BENCH_TAG:-p10}
NSA=$TAG-ri-a
NSB=$TAG-ri-b
VA=$TAG-ria
VB=$TAG-rib
IPA=10.214.11.1
IPB=10.214.11.2
need_tools make-replay-input tcpdump openssl curl nghttpd h2load
[[ -x $GEN ]] || { echo "make-replay-input: $GEN missing (build target udpgen)" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/$TAG-ri.XXXXXX")
BG=()
cleanup() {
  stop_bg_and_netns
  rm -rf "$WORK"
}
trap cleanup EXIT
veth_pair gso_max_segs 1

self_signed_cert "$WORK" || exit 1
mkdir -p "$WORK/www"
head -c $((1 << 20)) /dev/urandom >"$WORK/www/big"
head -c 4096 /dev/urandom >"$WORK/www/small"
ip netns exec "$NSB" openssl s_server -accept 8443 -cert "$WORK/cert.pem" -key "$WORK/key.pem" \
  -www -quiet >/dev/null 2>&1 &
BG+=($!)
ip netns exec "$NSB" nghttpd -d "$WORK/www" 9443 "$WORK/key.pem" "$WORK/cert.pem" >/dev/null 2>&1 &
BG+=($!)
wait_for listening 8443 && wait_for listening 9443 ||
  { echo "make-replay-input: TLS servers did not start" >&2; exit 1; }

ip netns exec "$NSB" tcpdump -i "$VB" -w "$OUTF" -n -s 262144 -B 65536 >/dev/null 2>"$WORK/tcpdump.log" &
TCPDUMP=$!
BG+=($TCPDUMP)
wait_for grep -q "listening on" "$WORK/tcpdump.log" || { cat "$WORK/tcpdump.log" >&2; exit 1; }

end=$((SECONDS + SECS))
# Handshake-heavy HTTPS: new sessions, both TLS versions.
(
  while ((SECONDS < end)); do
    ip netns exec "$NSA" curl -sk --tlsv1.3 -o /dev/null "https://$IPB:8443/" 
    ip netns exec "$NSA" curl -sk --tlsv1.2 --tls-max 1.2 -o /dev/null "https://$IPB:8443/"
  done
) &
CURLS=$!
BG+=($CURLS)
if [[ $MIX == bulk ]]; then
  # Bulk TLS (HTTP/2): full-size segments and ACKs.
  ip netns exec "$NSA" h2load -n 40 -c 2 "https://$IPB:9443/big" >"$WORK/h2load.log" 2>&1
  # UDP at both sizes.
  ip netns exec "$NSA" "$GEN" -d $IPB -p 9999 -t 0.2 -s 22 -b 8 >/dev/null
  ip netns exec "$NSA" "$GEN" -d $IPB -p 9999 -t 0.2 -s 1358 -b 8 >/dev/null
else
  # Many small HTTP/2 responses over TLS: small records, headers, ACKs.
  ip netns exec "$NSA" h2load -n 3000 -c 4 -m 1 "https://$IPB:9443/small" >"$WORK/h2load.log" 2>&1
  ip netns exec "$NSA" "$GEN" -d $IPB -p 9999 -t 0.25 -s 22 -b 8 >/dev/null
fi
while ((SECONDS < end)); do sleep 0.2; done
wait $CURLS 2>/dev/null
kill -INT $TCPDUMP 2>/dev/null
wait $TCPDUMP 2>/dev/null
read -r n b < <(capinfos -c -d -M -T -r "$OUTF" | awk -F'\t' '{print $2, $3}')
((n > 0)) || { echo "make-replay-input: nothing captured" >&2; exit 1; }
echo "make-replay-input: $n packets, $b bytes (mean $((b / n)) B) in $OUTF"
