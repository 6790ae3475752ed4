// SPDX-License-Identifier: BSD-2-Clause
// Warming ext4's block allocator before a long sequential write.
//
// Measured here (docs/performance.md, capture to disk): a file growing at ~0.5 GB/s crosses a
// 128 MiB block group every ~250 ms, and the allocator then reads that group's block bitmap
// (ext4_mb_init_cache -> ext4_wait_block_bitmap) while holding the inode lock. Under write load
// those 4 KiB reads queue behind our own 1 MiB writes and took 95-170 ms each, stalling every
// write to the file, filling the writer's buffers and then the kernel rings (drops).
// Reading /proc/fs/ext4/<dev>/mb_groups makes ext4 load the bitmap and buddy of every group
// (ext4_mb_seq_groups_show -> ext4_mb_load_buddy), once, while the disk is still idle.
#pragma once

#include <cstdint>
#include <string>

namespace ehp::output {

// The /proc/fs/ext4/<dev>/mb_groups file of the filesystem holding fd, or "" if fd is not on
// ext4 (or the device cannot be named).
std::string ext4_mb_groups_path(int fd);

// Starts (once per filesystem per process) a background read of that file, bounded to
// max_seconds. Returns false when there is nothing to warm (not ext4, no permission).
bool warm_block_allocator_async(int fd, unsigned max_seconds = 20);

// Groups read so far by all warm-ups of this process (for tests and stats).
uint64_t block_groups_warmed();

// Waits up to timeout_ms for the running warm-ups to finish; true if none is running.
bool wait_block_allocator_warm(unsigned timeout_ms);

}  // namespace ehp::output
