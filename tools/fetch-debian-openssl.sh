#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Fetches the shared OpenSSL of another Debian release (libssl + the openssl command, with that
# release's own C library) from the machine's Debian mirror, to test ecapture-hp against real
# shared libssl builds other than the system's:
#
#   tools/fetch-debian-openssl.sh SUITE DESTDIR     SUITE: bullseye (1.1.1), trixie (3.5), sid,
#                                                   plucky (Ubuntu 25.04: 3.4)
#
# Unpacks into DESTDIR/SUITE/root and writes DESTDIR/SUITE/openssl, a wrapper that runs that
# release's openssl under its own dynamic loader and C library (a newer libcrypto needs a newer
# glibc than this machine's), then prints the wrapper's path. The libssl it maps is
# DESTDIR/SUITE/root/usr/lib/x86_64-linux-gnu/libssl.so.*. Idempotent: a wrapper that already
# runs `version` is kept. The packages come from tools/fetch-debian.sh (the machine's mirror
# and keyring; nothing is installed on the machine).
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

bash "$(dirname "${BASH_SOURCE[0]}")/fetch-debian.sh" "$suite" "$dest" libc6 "$libssl" openssl zlib1g libzstd1

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
