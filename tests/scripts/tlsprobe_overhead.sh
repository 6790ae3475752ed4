#!/usr/bin/env bash
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
