#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Mounts a small tmpfs (ENOSPC), a ramfs (no O_DIRECT) and an ext4 on a loop device that is then
# shrunk under it (writes past the new end: EIO) under /tmp/p2-*, runs the writer's filesystem
# tests on them, and unmounts/detaches whatever happens. Needs root (mount, losetup).
set -euo pipefail
bin=$1
[[ $(id -u) -eq 0 ]] || { echo "writer_fs: needs root (mount)"; exit 1; }
base=$(mktemp -d /tmp/p2-writerfs-XXXXXX)
loopdev=
# io_uring tears a ring down asynchronously: its registered files can keep a mount busy for a
# moment after the test process exits, so retry the unmount until it succeeds (bounded).
unmount() {
  mountpoint -q "$1" || return 0
  for _ in $(seq 1 50); do
    umount "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  umount -l "$1" 2>/dev/null || true
}
cleanup() {
  unmount "$base/tmpfs"
  unmount "$base/ramfs"
  unmount "$base/eio"
  if [[ -n $loopdev ]]; then losetup -d "$loopdev" 2>/dev/null || true; fi
  rm -rf "$base" || true
}
trap cleanup EXIT
mkdir "$base/tmpfs" "$base/ramfs" "$base/eio"
tmpfs_bytes=$((6 * 1024 * 1024))
mount -t tmpfs -o size=${tmpfs_bytes},mode=0700 p2-writer-tmpfs "$base/tmpfs"
mount -t ramfs -o mode=0700 p2-writer-ramfs "$base/ramfs"
# 128 MiB ext4 (4 KiB blocks, no journal so metadata never needs the missing end), then the
# device is cut to 24 MiB: data blocks allocated past that fail with EIO.
truncate -s 128M "$base/disk.img"
mkfs.ext4 -q -F -b 4096 -O ^has_journal -E lazy_itable_init=0 "$base/disk.img"
loopdev=$(losetup -f --show "$base/disk.img")
mount -o errors=continue "$loopdev" "$base/eio"
truncate -s 24M "$base/disk.img"
losetup -c "$loopdev"
EHP_WRITER_TMPFS=$base/tmpfs EHP_WRITER_TMPFS_BYTES=$tmpfs_bytes EHP_WRITER_RAMFS=$base/ramfs \
  EHP_WRITER_EIO=$base/eio "$bin"
