#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Fetches the Go toolchain of another Debian release (the golang-1.NN-go and -src packages its
# golang-go depends on) from the machine's Debian mirror, to build test programs with a newer Go
# than the machine's (Debian 12: 1.19; Debian 13: 1.24), or a given one of the suite's
# (Ubuntu 22.04's 1.17, the last before Go's function table changed):
#
#   tools/fetch-debian-go.sh SUITE DESTDIR [1.NN]   (e.g. trixie build/deb-cache; jammy build/deb-cache 1.17)
#
# Unpacks into DESTDIR/SUITE-go[1.NN]/root (tools/fetch-debian.sh) and prints the toolchain's GOROOT.
# Idempotent. Exit codes: 0 ok, 2 usage / no such package, 3 mirror unreachable.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 || ! $1 =~ ^[a-z]+$ || ! ${3:-1.0} =~ ^1\.[0-9]+$ ]]; then
  echo "usage: $0 SUITE DESTDIR [1.NN]   (e.g. $0 trixie build/deb-cache)" >&2
  exit 2
fi
suite=$1
ver=${3:-}
dest=$(mkdir -p "$2" && cd "$2" && pwd)/$suite-go$ver
here=$(dirname "${BASH_SOURCE[0]}")
goroot=$(ls -d "$dest"/root/usr/lib/go-1.* 2>/dev/null | head -n1 || true)
if [[ -n $goroot && -x $goroot/bin/go ]] && "$goroot/bin/go" version >/dev/null 2>&1; then
  echo "$goroot"
  exit 0
fi
# Which golang-1.NN the suite's golang-go stands for: its /usr/lib/go link names it.
if [[ -z $ver ]]; then
  bash "$here/fetch-debian.sh" "$suite" "$dest/meta" golang-go
  ver=$(readlink "$dest/meta/root/usr/lib/go" 2>/dev/null | sed -n 's/^go-\(1\.[0-9]*\)$/\1/p')
  [[ -n $ver ]] || { echo "fetch-debian-go: cannot tell which Go $suite's golang-go is" >&2; exit 2; }
fi
bash "$here/fetch-debian.sh" "$suite" "$dest" "golang-$ver-go" "golang-$ver-src"
goroot=$dest/root/usr/lib/go-$ver
"$goroot/bin/go" version >/dev/null 2>&1 || { echo "fetch-debian-go: $suite's go $ver does not run here" >&2; exit 2; }
echo "$goroot"
