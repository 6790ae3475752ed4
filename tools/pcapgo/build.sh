#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Builds tools/pcapgo (eCapture's writer: gopacket pcapgo NgWriter) offline in GOPATH mode
# against Debian's golang-github-google-gopacket-dev. Usage: build.sh OUT_BINARY
set -euo pipefail
out=${1:?usage: build.sh OUT_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
command -v go >/dev/null || { echo "pcapgo: go not installed (golang-go)" >&2; exit 1; }
[[ -d /usr/share/gocode/src/github.com/google/gopacket/pcapgo ]] ||
  { echo "pcapgo: golang-github-google-gopacket-dev not installed" >&2; exit 1; }
tmp=$(mktemp -d /tmp/p10-gopath.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src/ehp-pcapgo"
cp "$here/main.go" "$tmp/src/ehp-pcapgo/"
cd "$tmp/src/ehp-pcapgo"
GO111MODULE=off GOPATH="$tmp:/usr/share/gocode" GOCACHE="$tmp/cache" GOFLAGS= \
  go build -o "$out" .
