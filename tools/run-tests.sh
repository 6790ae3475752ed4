#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Runs every ctest test (unit, bpf, e2e). BPF and e2e tests need root.
set -euo pipefail
BUILD=${1:-build}
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
cd "$BUILD"
ctest --output-on-failure --timeout 600 ${CTEST_ARGS:-}
