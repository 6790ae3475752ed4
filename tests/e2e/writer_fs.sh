#!/usr/bin/env bash
# Mounts a small tmpfs (ENOSPC) and a ramfs (no O_DIRECT) under /tmp/p2-*, runs the writer's
# filesystem tests on them, and unmounts whatever happens. Needs root (mount).
set -euo pipefail
bin=$1
[[ $(id -u) -eq 0 ]] || { echo "writer_fs: needs root (mount)"; exit 1; }
base=$(mktemp -d /tmp/p2-writerfs-XXXXXX)
cleanup() {
  umount "$base/tmpfs" 2>/dev/null || true
  umount "$base/ramfs" 2>/dev/null || true
  rm -rf "$base"
}
trap cleanup EXIT
mkdir "$base/tmpfs" "$base/ramfs"
tmpfs_bytes=$((6 * 1024 * 1024))
mount -t tmpfs -o size=${tmpfs_bytes},mode=0700 p2-writer-tmpfs "$base/tmpfs"
mount -t ramfs -o mode=0700 p2-writer-ramfs "$base/ramfs"
EHP_WRITER_TMPFS=$base/tmpfs EHP_WRITER_TMPFS_BYTES=$tmpfs_bytes EHP_WRITER_RAMFS=$base/ramfs "$bin"
