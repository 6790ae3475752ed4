// SPDX-License-Identifier: BSD-2-Clause
// io_uring pcapng file writer: one writer thread per output file.
//
// Threads and ownership
//   producer (exactly one thread)   reserve(n) -> encode a complete block in place -> commit(n)
//   writer thread (owned here)      submits sealed buffers to io_uring, resubmits short writes,
//                                   flushes the partial buffer on its own timer, truncates to the
//                                   last complete block after an error, fsyncs on close.
//
// Buffers: `buffers` slots of buffer_bytes (+4 KiB, see below), allocated once, 4 KiB aligned and
// registered with io_uring (write_fixed, registered file). A slot is either the producer's current
// buffer, queued ("sealed"), in flight, or free; the slot count bounds the in-flight depth, and
// reserve() blocks (counting backpressure_waits) while no slot is free. No allocation per block.
//
// O_DIRECT (buffered writes collapse to ~0.3 GB/s under load here, O_DIRECT holds 1.5-2 GB/s):
// every slot starts at a 4 KiB-aligned file offset and only the aligned part of a sealed buffer
// is written from it; the unaligned tail (< 4 KiB, it ends on a block boundary) is copied to the
// start of the next slot, which is why each slot has 4 KiB of headroom: any n <= buffer_bytes fits.
// A timed/explicit flush or close() writes that tail through a second, buffered file description
// of the same inode (pwrite); the 4 KiB block holding it is rewritten by O_DIRECT later with the
// same bytes plus more. When O_DIRECT is refused (EINVAL at open, e.g. ramfs; or EINVAL at the
// first write) the same scheme runs buffered. Note: tmpfs accepts O_DIRECT since Linux 6.6.
//
// "-" (stdout) is a stream: no offsets, no rewrites, one write in flight at a time, no O_DIRECT.
//
// Latency: the writer thread wakes every flush_interval_ms/2 and writes whatever complete blocks
// the current buffer holds, so committed data reaches the file within flush_interval_ms even if
// the producer never calls anything again. commit() is one release store; the writer reads the
// committed prefix of the buffer the producer is still filling (disjoint bytes, no copy).
//
// Errors (ENOSPC, EIO, EFBIG...): the first one is kept (error()), writing stops, in-flight I/O is
// drained, and a regular file is truncated to the end of the last complete block that fully
// reached the file (commit() marks block boundaries; inside the last partial range the pcapng
// block lengths are walked), so the file stays a valid pcapng. reserve() then returns nullptr.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace ehp::output {

struct WriterOptions {
  bool direct = true;            // try O_DIRECT (regular files only)
  // An existing FIFO/device of another user may be written (Wireshark's extcap --fifo); by
  // default it is refused like any file of another user (output/create.h).
  bool allow_foreign_stream = false;
  size_t buffer_bytes = 1 << 20; // largest block reserve() accepts; rounded up to 4 KiB
  // 64 x 1 MiB: at 1400 B x 2 senders, 16 slots (16 MiB) let disk stalls on this shared VM back
  // up into the rings (0.3-1% kernel drops); 64 absorbed them (docs/performance.md). RSS +48 MiB.
  unsigned buffers = 64;         // slots; also the max in-flight depth (min 2)
  unsigned flush_interval_ms = 2000;  // max commit->file latency; 0 = no timed flush
  bool fsync_on_close = true;
  // Regular files: allocate disk space this far ahead of the writes with
  // fallocate(FALLOC_FL_KEEP_SIZE), so a write does not allocate blocks (ext4 then journals
  // per write and stalls under load). The file size still only grows with written data, so a
  // killed capture leaves no zeros after its last block; close() frees what was not used.
  // 0 = off; refused by the filesystem = off.
  uint64_t prealloc_bytes = 64ull << 20;
  // Regular files with O_DIRECT: before a batch of writes is submitted, the file size is set to
  // the end of the batch (ftruncate), so no write extends the file. On ext4 an extending O_DIRECT
  // write takes the inode lock exclusively and runs synchronously in an io-wq worker, i.e. the
  // writes go one at a time; non-extending ones are issued inline, all in flight together
  // (replay: 1.07 -> 1.86 GB/s, docs/performance.md). The file then ends in zeros only where a
  // submitted write has not landed yet; block I/O already issued completes even if the process
  // is killed. Never past RLIMIT_FSIZE (the writes then find the limit as short writes), and
  // only over space preallocated ahead (prealloc_bytes): over a hole the writes would be punted
  // to io-wq anyway. A reader of the open file sees zeros where a write is still in flight.
  bool size_ahead = true;
  // Regular files on ext4: load the filesystem's block bitmaps in the background at open
  // (fs_warm.h), so that growing the file does not read them under load. Once per process.
  bool warm_allocator = true;
  // pcapng output: write each unaligned tail with O_DIRECT too, completed to the next 4 KiB
  // boundary by a filler block (pcapng::encode_filler) that the next write overwrites, instead
  // of through the page cache. Measured: the next O_DIRECT write over a page-cache tail must
  // wait for that page's writeback under the inode lock (95-120 ms stalls under load).
  // close() cuts the file back to the real end. Off: tails go through the buffered fd.
  bool pad_tail = false;
};

struct WriterStats {
  uint64_t bytes_committed = 0;   // bytes the producer committed
  uint64_t bytes_written = 0;     // bytes the kernel reported written (includes tail rewrites)
  uint64_t blocks = 0;            // commit() calls
  uint64_t writes_submitted = 0;  // io_uring writes + synchronous (flush/tail) writes
  uint64_t short_writes = 0;      // writes that returned 0 < res < len and were resubmitted
  uint64_t backpressure_waits = 0;  // reserve() calls that had to wait for a free buffer
  uint64_t flushes = 0;           // partial-buffer flushes (timer, flush(), close)
  bool direct_io = false;         // O_DIRECT in use (false after a fallback)
  // After an error: the size the file was cut back to (end of the last complete block on
  // file); UINT64_MAX when no truncation happened.
  uint64_t truncated_to_bytes = UINT64_MAX;
  uint64_t prealloc_calls = 0;    // fallocate(KEEP_SIZE) calls that succeeded
  uint64_t size_ahead_calls = 0;  // ftruncate calls that sized the file ahead of a write batch
};

class Writer {
 public:
  // path "-" = stdout (no O_DIRECT; works for pipes). Files are created 0600 (fchmod, so the
  // umask does not matter) with O_TRUNC|O_NOFOLLOW|O_CLOEXEC. nullptr + *err on failure.
  static std::unique_ptr<Writer> open(const std::string& path, const WriterOptions& opts,
                                      std::string* err);
  ~Writer();  // close(nullptr) if not closed yet
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Producer side, ONE producer thread. reserve() returns contiguous space for one block of n
  // bytes; encode into it, then commit(n) with the same or a smaller n. Blocks (and counts
  // backpressure) while every buffer is in flight. Returns nullptr once the writer has failed or
  // is closed, or when n > max_block_bytes() (a caller bug; the writer keeps working).
  uint8_t* reserve(size_t n) {
    if (used_bytes_ + n <= cap_bytes_ && !failed_.load(std::memory_order_relaxed)) [[likely]]
      return cur_data_ + used_bytes_;
    return reserve_slow(n);
  }
  void commit(size_t n);
  // Copy convenience: reserve + memcpy + commit. false when reserve() fails.
  bool append(const void* block, size_t n);

  void flush();  // ask the writer thread to write the committed part of the current buffer now
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  std::string error() const;  // one line, e.g. "write pcap.pcapng: No space left on device"
  // Drain everything, write the tail, fsync, close. Idempotent; false + *err if the writer failed.
  bool close(std::string* err);
  WriterStats stats() const;
  size_t max_block_bytes() const { return buffer_bytes_; }
  const std::string& path() const { return path_; }

 private:
  struct Slot;
  struct Sealed;
  Writer() = default;
  uint8_t* reserve_slow(size_t n);
  bool setup(const std::string& path, const WriterOptions& opts, std::string* err);
  void run();  // writer thread
  void wake_writer();
  void set_error(const char* what, int err_no);
  void release_producer();
  bool disable_direct();
  void submit_sealed(const Sealed& s);
  void submit_write(unsigned slot_index);
  void on_write_done(unsigned slot_index, int res);
  void complete_in_order();
  void reap(bool wait, long timeout_ns);
  void arm_event();  // queue the eventfd read (writer thread)
  void drain_inflight();
  bool try_partial_flush();
  bool partial_flush(unsigned slot_index, uint64_t seq, uint64_t file_off, size_t len);
  bool write_sync(bool tail, const uint8_t* p, size_t n, uint64_t file_off);
  int write_padded_tail(const uint8_t* p, size_t n, uint64_t file_off);
  void truncate_after_error();
  void preallocate(uint64_t end);
  void size_ahead(uint64_t end);
  void note_size(uint64_t end) { size_end_ = std::max(size_end_, end); }

  // --- immutable after open ---
  std::string path_;
  std::string label_;  // path for messages ("stdout" for "-")
  WriterOptions opts_;
  size_t buffer_bytes_ = 0;  // max block size
  size_t cap_bytes_ = 0;     // slot capacity = buffer_bytes_ + align_bytes_
  size_t align_bytes_ = 1;   // 4096 for files, 1 for streams
  bool stream_ = false;
  bool regular_file_ = false;
  int fd_ = -1;       // O_DIRECT (if it worked) fd, registered as file index 0
  int tail_fd_ = -1;  // buffered description of the same inode, file index 1 (files only)
  int event_fd_ = -1;  // producer -> writer wakeups
  uint8_t* arena_ = nullptr;
  std::unique_ptr<Slot[]> slots_;
  unsigned nslots_ = 0;
  struct RingHolder;
  std::unique_ptr<RingHolder> ring_;
  std::thread thread_;

  // --- producer thread only (own cache line: commit() must not share one with the writer) ---
  alignas(64) uint8_t* cur_data_ = nullptr;
  size_t used_bytes_ = 0;       // > cap_bytes_ when there is no current buffer (closed/failed)
  unsigned cur_slot_p_ = 0;
  uint64_t cur_file_off_ = 0;   // file offset of the current buffer
  uint8_t* bounce_ = nullptr;   // 2 x 4 KiB, aligned: tail + filler for pad_tail writes
  uint64_t prealloc_end_ = 0;   // writer thread: space allocated up to here (0 = none yet)
  bool prealloc_on_ = false;    // writer thread: preallocation in use
  bool prealloc_tried_ = false; // writer thread: fallocate was called (close() gives space back)
  std::atomic<uint64_t> st_prealloc_{0};
  bool size_ahead_on_ = false;  // writer thread: size_ahead in use
  uint64_t size_end_ = 0;       // writer thread: the file's size (every write and cut passes here)
  uint64_t fsize_limit_ = UINT64_MAX;  // RLIMIT_FSIZE at open
  std::atomic<uint64_t> st_size_ahead_{0};
  uint64_t boundary_le_aligned_ = 0;  // largest block boundary <= floor_align(end of data)
  uint64_t seq_ = 0;
  bool closed_ = false;
  bool close_ok_ = true;
  std::atomic<uint64_t> st_committed_{0}, st_blocks_{0};  // written by commit() only

  // --- shared, under mu_ ---
  alignas(64) mutable std::mutex mu_;
  std::condition_variable free_cv_;
  std::unique_ptr<unsigned[]> free_list_;
  unsigned free_count_ = 0;
  std::unique_ptr<Sealed[]> sealed_q_;
  unsigned sealed_head_ = 0, sealed_count_ = 0;
  int cur_slot_ = -1;  // the buffer the producer is filling, -1 while switching
  mutable std::mutex err_mu_;  // guards error_ only (set_error may run while mu_ is held)
  std::string error_;

  // --- writer thread only ---
  alignas(64) std::unique_ptr<unsigned[]> fifo_;  // slots with a request, in file order (durability tracking)
  unsigned fifo_head_ = 0, fifo_count_ = 0;
  unsigned inflight_ = 0;
  uint64_t durable_end_ = 0;       // contiguous prefix of the file known written
  uint64_t durable_boundary_ = 0;  // largest block boundary <= durable_end_ known to the writer
  uint64_t flushed_seq_ = UINT64_MAX;  // seq of the buffer partial_flush last wrote from
  size_t flushed_final_bytes_ = 0;     // ...how much of it needs no rewrite (aligned part)
  size_t flushed_total_bytes_ = 0;     // ...and how much it wrote in all
  uint64_t event_buf_ = 0;
  bool woken_ = false;  // an eventfd completion was consumed since the queue was last checked

  // Written by the writer thread (stats), read by anyone.
  std::atomic<uint64_t> st_written_{0}, st_submitted_{0}, st_short_{0}, st_flushes_{0};
  std::atomic<uint64_t> truncated_at_{UINT64_MAX};  // where the error path cut the file

  // --- read-mostly flags; st_backpressure_ only changes when the producer waits anyway ---
  alignas(64) std::atomic<bool> failed_{false};
  std::atomic<bool> flush_requested_{false};
  std::atomic<bool> direct_{false};
  std::atomic<uint64_t> st_backpressure_{0};
};

}  // namespace ehp::output
