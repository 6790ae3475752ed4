#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Measures the TlsProbe hook overhead (root): tlsprobe_overhead.sh BENCH [seconds_per_round] [rounds]
# Prints the median rate per workload with no probe, the probe in secrets mode and in -m text
# mode, all in the same run, and the ratios.
set -euo pipefail
BENCH=$1
T=$(mktemp -d /tmp/p6.tlsbench.XXXXXX)
trap 'rm -rf "$T"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$T/key.pem" \
  -out "$T/cert.pem" -subj /CN=localhost -days 1 2>/dev/null
"$BENCH" "$T/cert.pem" "$T/key.pem" "${2:-0.5}" "${3:-5}"

# Real processes: openssl s_time against openssl s_server over loopback (both traced), new
# connections (handshake path) and one reused connection fetching a page (I/O path), probe off
# and on alternately in the same run.
TOOL=$(dirname "$BENCH")/tlsprobe_tool
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
openssl s_server -accept "127.0.0.1:$PORT" -cert "$T/cert.pem" -key "$T/key.pem" -www -quiet >/dev/null 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null; rm -rf "$T"' EXIT
until bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null; do sleep 0.05; done
stime() {  # prints connections/s
  openssl s_time -connect "127.0.0.1:$PORT" "$@" -time "${STIME_SECS:-3}" 2>/dev/null |
    awk '/connections in .* real seconds/ {printf "%.0f", $1 / $4; exit}'
}
for mode in off secrets fallback off secrets fallback; do
  PROBE=
  if [ "$mode" != off ]; then
    extra=; [ "$mode" = fallback ] && extra=--fallback
    rm -f "$T/ready"
    "$TOOL" $extra --out /dev/null --ready "$T/ready" 2>/dev/null &
    PROBE=$!
    until [ -s "$T/ready" ]; do sleep 0.05; done
  fi
  new=$(stime -new)
  reuse=$(stime -reuse -www /)
  echo "s_time $mode: new ${new} conn/s, resumed+GET ${reuse} conn/s"
  [ -n "$PROBE" ] && { kill $PROBE; wait $PROBE 2>/dev/null || true; }
done
