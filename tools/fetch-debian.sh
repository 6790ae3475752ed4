#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Fetches packages of another Debian release from the machine's Debian mirror and unpacks them
# (nothing is installed on the machine), for tests against real binaries other than the
# system's: tools/fetch-debian-openssl.sh (libssl of other releases), tools/fetch-debian-go.sh
# (a newer Go toolchain).
#
#   tools/fetch-debian.sh SUITE DESTDIR PKG...
#
# Unpacks every PKG at SUITE's own version into DESTDIR/root (DESTDIR/root.pkgs lists them: a
# second call with the same list does nothing). apt-get runs under a private configuration with
# the machine's mirror and keyring, so signatures and hashes are checked as for any install.
# SUITE may also be an Ubuntu release (plucky: OpenSSL 3.4, jammy: Go 1.17, versions Debian never shipped):
# those come from Ubuntu's archive ($EHP_UBUNTU_MIRROR overrides it), checked against Ubuntu's
# archive keyring, itself taken from Debian's signed ubuntu-keyring package (trixie).
# Exit codes: 0 ok, 2 usage / no such package, 3 mirror unreachable.
set -euo pipefail

if [[ $# -lt 3 || ! $1 =~ ^[a-z]+$ ]]; then
  echo "usage: $0 SUITE DESTDIR PKG...   (e.g. $0 trixie build/deb-cache/trixie libssl3t64)" >&2
  exit 2
fi
suite=$1
dest=$(mkdir -p "$2" && cd "$2" && pwd)
shift 2
want="$suite $*"
[[ -f $dest/root.pkgs && $(cat "$dest/root.pkgs") == "$want" ]] && exit 0

# The machine's Debian mirror: the first URI of its Debian sources (deb822 or one-line form).
mirror=$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[[ -n $mirror ]] || mirror=$(awk '$1 == "deb" && $0 ~ /\/debian\/? / {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
                               /etc/apt/sources.list 2>/dev/null || true)
[[ -n $mirror ]] || { echo "fetch-debian: no Debian mirror in the machine's apt sources" >&2; exit 3; }
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
components=main
case $suite in
  jammy | noble | plucky | questing | resolute)
    # Ubuntu's keyring comes from Debian (signed by Debian's keys, checked by apt): the trust
    # chain is Debian's archive key -> ubuntu-keyring -> the Ubuntu release's InRelease.
    bash "${BASH_SOURCE[0]}" trixie "$dest/ubuntu-keyring" ubuntu-keyring
    keyring=$dest/ubuntu-keyring/root/usr/share/keyrings/ubuntu-archive-keyring.gpg
    [[ -f $keyring ]] || { echo "fetch-debian: Debian's ubuntu-keyring has no ubuntu-archive-keyring.gpg" >&2; exit 2; }
    mirror=${EHP_UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}
    components="main universe" ;;  # Ubuntu keeps older Go toolchains (golang-1.17) in universe
esac

apt_dir=$dest/apt
rm -rf "$apt_dir" "$dest/root" "$dest/root.pkgs"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs" "$dest/root"
echo "deb [signed-by=$keyring] $mirror $suite $components" >"$apt_dir/sources.list"
opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o APT::Sandbox::User=root
      -o Acquire::Retries=1 -o Acquire::http::Timeout=30)
if ! timeout 300 apt-get "${opts[@]}" update >"$apt_dir/update.log" 2>&1 ||
   grep -Eq '^(Err|W: Failed)' "$apt_dir/update.log"; then
  echo "fetch-debian: $suite's package list cannot be had from $mirror: $(grep -m1 -E 'Err|Failed' "$apt_dir/update.log" || tail -n1 "$apt_dir/update.log")" >&2
  exit 3
fi
# Each at the suite's own version (the machine's installed one may be newer, and apt would
# otherwise pick it).
pkgs=()
for p in "$@"; do
  v=$(apt-cache "${opts[@]}" madison "$p" 2>/dev/null | awk -F'|' 'NR == 1 {gsub(/ /, "", $2); print $2}')
  [[ -n $v ]] || { echo "fetch-debian: $suite has no package $p" >&2; exit 2; }
  pkgs+=("$p=$v")
done
if ! (cd "$apt_dir/debs" && timeout 600 apt-get "${opts[@]}" download "${pkgs[@]}" >"$apt_dir/download.log" 2>&1); then
  echo "fetch-debian: apt-get download ${pkgs[*]} ($suite) failed: $(grep -m1 -E '^E:' "$apt_dir/download.log" || tail -n1 "$apt_dir/download.log")" >&2
  exit 2
fi
for d in "$apt_dir"/debs/*.deb; do dpkg-deb -x "$d" "$dest/root"; done
rm -rf "$apt_dir"
echo "$want" >"$dest/root.pkgs"
