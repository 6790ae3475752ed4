#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Fetches the shared OpenSSL of another Debian release (libssl + the openssl command, with that
# release's own C library) from the machine's Debian mirror, to test ecapture-hp against real
# shared libssl builds other than the system's:
#
#   tools/fetch-debian-openssl.sh SUITE DESTDIR     SUITE: bullseye (1.1.1), trixie (3.5), sid
#
# Unpacks into DESTDIR/SUITE/root and writes DESTDIR/SUITE/openssl, a wrapper that runs that
# release's openssl under its own dynamic loader and C library (a newer libcrypto needs a newer
# glibc than this machine's), then prints the wrapper's path. The libssl it maps is
# DESTDIR/SUITE/root/usr/lib/x86_64-linux-gnu/libssl.so.*. Idempotent: a wrapper that already
# runs `version` is kept. Packages are fetched with apt-get under a private configuration (the
# machine's mirror and keyring: signatures and hashes are checked as for any install); nothing
# is installed on the machine.
# Exit codes: 0 ok, 2 usage / no such package, 3 mirror unreachable.
set -euo pipefail

if [[ $# -ne 2 || ! $1 =~ ^[a-z]+$ ]]; then
  echo "usage: $0 SUITE DESTDIR   (e.g. $0 trixie build/deb-cache)" >&2
  exit 2
fi
suite=$1
dest=$(mkdir -p "$2" && cd "$2" && pwd)/$suite
wrapper=$dest/openssl
if [[ -x $wrapper ]] && "$wrapper" version >/dev/null 2>&1; then
  echo "$wrapper"
  exit 0
fi
case $suite in
  bullseye | buster) libssl=libssl1.1 ;;
  *) libssl=libssl3t64 ;;
esac

# The machine's Debian mirror: the first URI of its Debian sources (deb822 or one-line form).
mirror=$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[[ -n $mirror ]] || mirror=$(awk '$1 == "deb" && $0 ~ /\/debian\/? / {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
                               /etc/apt/sources.list 2>/dev/null || true)
[[ -n $mirror ]] || { echo "fetch-debian-openssl: no Debian mirror in the machine's apt sources" >&2; exit 3; }

apt_dir=$dest/apt
rm -rf "$apt_dir" "$dest/root"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs" "$dest/root"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$apt_dir/sources.list"
opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o APT::Sandbox::User=root
      -o Acquire::Retries=1 -o Acquire::http::Timeout=30)
if ! timeout 300 apt-get "${opts[@]}" update >"$apt_dir/update.log" 2>&1 ||
   grep -Eq '^(Err|W: Failed)' "$apt_dir/update.log"; then
  echo "fetch-debian-openssl: $suite's package list cannot be had from the mirror: $(grep -m1 -E 'Err|Failed' "$apt_dir/update.log" || tail -n1 "$apt_dir/update.log")" >&2
  exit 3
fi
# Each at the suite's own version (the machine's installed one may be newer, and apt would
# otherwise pick it).
pkgs=()
for p in libc6 "$libssl" openssl zlib1g libzstd1; do
  v=$(apt-cache "${opts[@]}" madison "$p" 2>/dev/null | awk -F'|' 'NR == 1 {gsub(/ /, "", $2); print $2}')
  [[ -n $v ]] || { echo "fetch-debian-openssl: $suite has no package $p" >&2; exit 2; }
  pkgs+=("$p=$v")
done
if ! (cd "$apt_dir/debs" && timeout 300 apt-get "${opts[@]}" download "${pkgs[@]}" >"$apt_dir/download.log" 2>&1); then
  echo "fetch-debian-openssl: apt-get download ${pkgs[*]} ($suite) failed: $(grep -m1 -E '^E:' "$apt_dir/download.log" || tail -n1 "$apt_dir/download.log")" >&2
  exit 2
fi
for d in "$apt_dir"/debs/*.deb; do dpkg-deb -x "$d" "$dest/root"; done
rm -rf "$apt_dir"

# The release's loader (merged /usr or not), by its real file rather than a symlink.
loader=$(find "$dest/root" -name 'ld-linux-x86-64.so.2' \( -type f -o -type l \) | head -n1)
[[ -n $loader ]] && loader=$(readlink -f "$loader" 2>/dev/null || echo "$loader")
[[ -n $loader && -f $loader && $loader == "$dest/root"* ]] ||
  loader=$(find "$dest/root" -name 'ld-2.*.so' -type f | head -n1)
[[ -n $loader && -f $loader ]] || { echo "fetch-debian-openssl: no dynamic loader in $suite's libc6" >&2; exit 2; }
libpath="$dest/root/lib/x86_64-linux-gnu:$dest/root/usr/lib/x86_64-linux-gnu"
cat >"$wrapper.tmp" <<SH
#!/bin/sh
# $suite's openssl, with $suite's libssl, libcrypto and C library (tools/fetch-debian-openssl.sh).
OPENSSL_CONF=/dev/null exec "$loader" --library-path "$libpath" "$dest/root/usr/bin/openssl" "\$@"
SH
chmod 0755 "$wrapper.tmp"
mv -f "$wrapper.tmp" "$wrapper"
"$wrapper" version >/dev/null 2>&1 || { echo "fetch-debian-openssl: $suite's openssl does not run here: $("$wrapper" version 2>&1 | head -n1)" >&2; exit 2; }
echo "$wrapper"
