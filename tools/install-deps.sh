#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Installs every Debian package ecapture-hp needs to build and test. Idempotent:
# it only calls apt-get when something is missing.
set -euo pipefail
PKGS=(
  # build
  build-essential cmake pkg-config clang llvm libclang-rt-14-dev libbpf-dev bpftool libelf-dev zlib1g-dev
  libpcap-dev libssl-dev libtbb-dev libconcurrentqueue-dev liburing-dev
  libbenchmark-dev libgtest-dev libcli11-dev libzydis-dev
  # test peers
  tshark wireshark-common tcpdump curl nghttp2-server nghttp2-client iproute2 python3 openssl
  util-linux procps fio iputils-ping
  # a TLS peer whose library is not traced (every key must come from the stack under test);
  # the Node.js builds come from the npm registry with the machine's npm (tools/fetch-node.sh)
  gnutls-bin
  # BoringSSL (Android's, with headers) for the e2e test's client
  android-libboringssl-dev
  # benchmarks (tools/bench*.sh): eCapture's writer (tools/pcapgo), profiling
  golang-go golang-github-google-gopacket-dev golang-golang-x-net-dev golang-golang-x-sys-dev linux-perf
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections || true
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
