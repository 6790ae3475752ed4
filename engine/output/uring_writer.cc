// SPDX-License-Identifier: BSD-2-Clause
// io_uring pcapng writer. Design notes live in uring_writer.h; this file keeps the why of each step
// next to the code. Request handling follows liburing's examples/io_uring-cp.c: bounded depth,
// per-request state found through user_data, short writes resubmitted from where they stopped,
// everything in flight drained before exit.
#include "output/uring_writer.h"
#include "output/create.h"

#include "output/fs_warm.h"
#include "output/pcapng.h"

#include <pthread.h>
#include <fcntl.h>
#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace ehp::output {
namespace {

constexpr size_t kDirectAlign = 4096;          // O_DIRECT offset/length/address alignment we use
constexpr uint64_t kEventTag = UINT64_MAX;     // user_data of the eventfd read
constexpr unsigned kNoSlot = UINT32_MAX;
constexpr long kFlushRetryNs = 10'000'000;     // retry a skipped timed flush after 10 ms

uint64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The next free SQE of `ring`; when the submission queue is full, submit what is queued first
// and take one from the space that frees. The one place that gets SQEs.
io_uring_sqe* get_sqe(io_uring* ring) {
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  if (!sqe) {
    io_uring_submit(ring);
    sqe = io_uring_get_sqe(ring);
  }
  return sqe;
}

}  // namespace

struct Writer::Slot {
  uint8_t* data = nullptr;
  std::atomic<size_t> committed{0};  // producer: release store after each commit()
  // Set by the producer under mu_ when the slot becomes the current buffer.
  uint64_t seq = 0;
  uint64_t file_off = 0;
  // Writer thread only: the request for this slot (one at most).
  size_t req_start = 0;    // first byte (relative to data) this request writes
  size_t req_pos = 0;      // next byte (relative to data) to write
  size_t req_end = 0;      // end of what this request writes (relative)
  uint64_t req_file_off = 0;
  uint64_t req_boundary = 0;  // largest block boundary <= req_file_off + req_end
  size_t req_sealed_len = 0;  // committed bytes at seal time (ends on a block boundary)
  bool req_done = false;
  bool req_failed = false;
};

struct Writer::Sealed {
  unsigned slot = kNoSlot;
  uint64_t seq = 0;
  uint64_t file_off = 0;
  size_t len_bytes = 0;     // committed bytes in the slot (ends on a block boundary)
  uint64_t boundary = 0;    // largest block boundary <= file_off + floor_align(len_bytes)
  bool final = false;       // close(): write everything, fsync, exit
};

struct Writer::RingHolder {
  io_uring ring{};
  bool inited = false;
  bool fixed_bufs = false;
  bool fixed_files = false;
};

// ---------------------------------------------------------------------------------------------
// open / setup

std::unique_ptr<Writer> Writer::open(const std::string& path, const WriterOptions& opts,
                                     std::string* err) {
  std::unique_ptr<Writer> w(new Writer());
  if (!w->setup(path, opts, err)) return nullptr;  // ~Writer releases what setup got
  return w;
}

bool Writer::setup(const std::string& path, const WriterOptions& opts, std::string* err) {
  auto fail = [&](const std::string& what, int e) {
    if (err) *err = what + " " + label_ + ": " + std::strerror(e);
    return false;
  };
  path_ = path;
  opts_ = opts;
  label_ = path == "-" ? std::string("stdout") : path;
  if (path.empty()) {
    if (err) *err = "open: empty output path";
    return false;
  }
  buffer_bytes_ = std::max<size_t>(opts.buffer_bytes, kDirectAlign);
  buffer_bytes_ = (buffer_bytes_ + kDirectAlign - 1) & ~(kDirectAlign - 1);
  nslots_ = std::max(2u, opts.buffers);

  if (path == "-") {
    stream_ = true;
    fd_ = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (fd_ < 0) return fail("dup", errno);
  } else {
    // Fresh 0600 file, or a FIFO/device we may write (output/create.h says who may own what).
    std::string cerr;
    CreateResult cr = create_output(path, opts.direct, opts.allow_foreign_stream, &cerr);
    if (cr.fd < 0) {
      if (err) *err = cerr;
      return false;
    }
    fd_ = cr.fd;
    bool direct = cr.direct;
    struct stat st {};
    if (fstat(fd_, &st) != 0) return fail("stat", errno);
    regular_file_ = S_ISREG(st.st_mode);
    if (regular_file_) {
      // The umask may have masked bits off, or the file existed with another mode: pin 0600.
      if (fchmod(fd_, 0600) != 0) return fail("chmod", errno);
      // A second open file description of the same inode without O_DIRECT, for the unaligned
      // tail. Reopened through /proc so a renamed/replaced path cannot redirect it.
      const std::string self = "/proc/self/fd/" + std::to_string(fd_);
      tail_fd_ = ::open(self.c_str(), O_RDWR | O_CLOEXEC);  // read: truncate_after_error
      if (tail_fd_ < 0) return fail("reopen", errno);
      struct stat st2 {};
      if (fstat(tail_fd_, &st2) != 0) return fail("stat", errno);
      if (st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) return fail("reopen", ESTALE);
      direct_.store(direct);
      prealloc_on_ = opts.prealloc_bytes > 0;
      size_ahead_on_ = opts.size_ahead;
      struct rlimit rl {};
      if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        fsize_limit_ = uint64_t(rl.rlim_cur);
      if (opts.warm_allocator) warm_block_allocator_async(fd_);
    } else {
      // A device or FIFO given by name: write it like stdout.
      stream_ = true;
      if (direct) fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) & ~O_DIRECT);
    }
  }
  align_bytes_ = stream_ ? 1 : kDirectAlign;
  // 4 KiB headroom for the carried tail, so any block of <= buffer_bytes fits after a carry.
  cap_bytes_ = stream_ ? buffer_bytes_ : buffer_bytes_ + kDirectAlign;

  const size_t arena_bytes = cap_bytes_ * nslots_;
  arena_ = static_cast<uint8_t*>(std::aligned_alloc(kDirectAlign, arena_bytes));
  if (!arena_) return fail("alloc buffers for", ENOMEM);
  slots_ = std::make_unique<Slot[]>(nslots_);
  free_list_ = std::make_unique<unsigned[]>(nslots_);
  sealed_q_ = std::make_unique<Sealed[]>(nslots_ + 1);  // + the final entry
  fifo_ = std::make_unique<unsigned[]>(nslots_);
  for (unsigned i = 0; i < nslots_; i++) slots_[i].data = arena_ + i * cap_bytes_;

  if (opts.pad_tail) {
    // tail (< 4 KiB) + filler (>= 16 B) always ends at 4 or 8 KiB.
    bounce_ = static_cast<uint8_t*>(std::aligned_alloc(kDirectAlign, 2 * kDirectAlign));
    if (!bounce_) return fail("alloc buffers for", ENOMEM);
  }
  ring_ = std::make_unique<RingHolder>();
  unsigned entries = 4;
  while (entries < nslots_ + 2) entries <<= 1;
  int r = io_uring_queue_init(entries, &ring_->ring, 0);
  if (r < 0) return fail("io_uring_queue_init for", -r);
  ring_->inited = true;
  // Registered buffers skip per-I/O page pinning. Needs RLIMIT_MEMLOCK (or CAP_IPC_LOCK);
  // without it, plain writes from the same memory still work.
  std::vector<iovec> iov(nslots_);
  for (unsigned i = 0; i < nslots_; i++) iov[i] = {slots_[i].data, cap_bytes_};
  ring_->fixed_bufs = io_uring_register_buffers(&ring_->ring, iov.data(), nslots_) == 0;
  const int files[2] = {fd_, tail_fd_};
  ring_->fixed_files = io_uring_register_files(&ring_->ring, files, tail_fd_ >= 0 ? 2 : 1) == 0;

  event_fd_ = eventfd(0, EFD_CLOEXEC);
  if (event_fd_ < 0) return fail("eventfd for", errno);

  // Slot 0 is the producer's first buffer; the rest are free.
  for (unsigned i = 1; i < nslots_; i++) free_list_[free_count_++] = i;
  cur_slot_ = 0;
  cur_slot_p_ = 0;
  cur_data_ = slots_[0].data;
  used_bytes_ = 0;
  thread_ = std::thread(&Writer::run, this);
  return true;
}

Writer::~Writer() {
  if (thread_.joinable()) close(nullptr);
  if (ring_ && ring_->inited) io_uring_queue_exit(&ring_->ring);
  if (event_fd_ >= 0) ::close(event_fd_);
  if (tail_fd_ >= 0) ::close(tail_fd_);
  if (fd_ >= 0) ::close(fd_);
  std::free(arena_);
  std::free(bounce_);
}

// ---------------------------------------------------------------------------------------------
// producer side

void Writer::commit(size_t n) {
  if (!cur_data_) return;
  const uint64_t start = cur_file_off_ + used_bytes_;
  const uint64_t end = start + n;
  used_bytes_ += n;
  // Track the largest block boundary <= floor_align(end): it is where the aligned part of this
  // buffer stops, the only boundary the error path needs from us (see truncate_after_error).
  const uint64_t aligned_end = end & ~uint64_t(align_bytes_ - 1);
  if (aligned_end == end)
    boundary_le_aligned_ = end;
  else if (start <= aligned_end)
    boundary_le_aligned_ = start;
  slots_[cur_slot_p_].committed.store(used_bytes_, std::memory_order_release);
  // Single writer: plain load+store instead of a locked read-modify-write.
  st_blocks_.store(st_blocks_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  st_committed_.store(st_committed_.load(std::memory_order_relaxed) + n,
                      std::memory_order_relaxed);
}

bool Writer::append(const void* block, size_t n) {
  uint8_t* p = reserve(n);
  if (!p) return false;
  std::memcpy(p, block, n);
  commit(n);
  return true;
}

uint8_t* Writer::reserve_slow(size_t n) {
  if (closed_ || failed() || n > buffer_bytes_ || !cur_data_) return nullptr;
  const unsigned old = cur_slot_p_;
  const size_t len = used_bytes_;
  const size_t aligned = len & ~(align_bytes_ - 1);
  const size_t carry = len - aligned;
  std::unique_lock lk(mu_);
  if (failed()) return nullptr;
  // Hand the full buffer over first, so the writer can start on it while we wait for a free one.
  Sealed& s = sealed_q_[(sealed_head_ + sealed_count_++) % (nslots_ + 1)];
  s = Sealed{old, seq_, cur_file_off_, len, boundary_le_aligned_, false};
  cur_slot_ = -1;
  lk.unlock();
  wake_writer();
  lk.lock();
  if (free_count_ == 0) {
    st_backpressure_.fetch_add(1, std::memory_order_relaxed);
    free_cv_.wait(lk, [&] { return free_count_ > 0 || failed(); });
  }
  if (failed()) {
    cur_data_ = nullptr;
    used_bytes_ = cap_bytes_ + 1;  // keeps the reserve() fast path failing, even for n = 0
    return nullptr;
  }
  const unsigned next = free_list_[--free_count_];
  // The old slot may be the one we just got back (its write finished): memmove handles the
  // overlap, and bytes past the aligned part were never part of the write, so they are intact.
  std::memmove(slots_[next].data, slots_[old].data + aligned, carry);
  slots_[next].seq = ++seq_;
  slots_[next].file_off = cur_file_off_ + aligned;
  slots_[next].committed.store(carry, std::memory_order_release);
  cur_slot_ = static_cast<int>(next);
  lk.unlock();
  cur_slot_p_ = next;
  cur_data_ = slots_[next].data;
  used_bytes_ = carry;
  cur_file_off_ += aligned;
  return cur_data_ + used_bytes_;
}

void Writer::flush() {
  if (closed_) return;
  flush_requested_.store(true, std::memory_order_release);
  wake_writer();
}

void Writer::wake_writer() {
  const uint64_t one = 1;
  // eventfd writes only fail on counter overflow, which cannot happen with 1s.
  [[maybe_unused]] ssize_t r = ::write(event_fd_, &one, sizeof one);
}

bool Writer::close(std::string* err) {
  if (!closed_) {
    closed_ = true;
    {
      std::lock_guard lk(mu_);
      Sealed& s = sealed_q_[(sealed_head_ + sealed_count_++) % (nslots_ + 1)];
      if (cur_data_)
        s = Sealed{cur_slot_p_, seq_, cur_file_off_, used_bytes_, boundary_le_aligned_, true};
      else
        s = Sealed{kNoSlot, seq_, cur_file_off_, 0, 0, true};
      cur_slot_ = -1;
    }
    wake_writer();
    if (thread_.joinable()) thread_.join();
    cur_data_ = nullptr;
    used_bytes_ = cap_bytes_ + 1;
    // fds and the ring go now: a closed writer holds no file open.
    if (ring_ && ring_->inited) {
      io_uring_queue_exit(&ring_->ring);
      ring_->inited = false;
    }
    if (tail_fd_ >= 0) ::close(tail_fd_);
    tail_fd_ = -1;
    if (fd_ >= 0 && ::close(fd_) != 0 && !failed()) set_error("close", errno);
    fd_ = -1;
    close_ok_ = !failed();
  }
  if (!close_ok_ && err) *err = error();
  return close_ok_;
}

std::string Writer::error() const {
  std::lock_guard lk(err_mu_);
  return error_;
}

WriterStats Writer::stats() const {
  WriterStats s;
  s.bytes_committed = st_committed_.load(std::memory_order_relaxed);
  s.bytes_written = st_written_.load(std::memory_order_relaxed);
  s.blocks = st_blocks_.load(std::memory_order_relaxed);
  s.writes_submitted = st_submitted_.load(std::memory_order_relaxed);
  s.short_writes = st_short_.load(std::memory_order_relaxed);
  s.backpressure_waits = st_backpressure_.load(std::memory_order_relaxed);
  s.flushes = st_flushes_.load(std::memory_order_relaxed);
  s.direct_io = direct_.load(std::memory_order_relaxed);
  s.truncated_to_bytes = truncated_at_.load(std::memory_order_relaxed);
  s.prealloc_calls = st_prealloc_.load(std::memory_order_relaxed);
  s.size_ahead_calls = st_size_ahead_.load(std::memory_order_relaxed);
  return s;
}

void Writer::set_error(const char* what, int err_no) {
  std::lock_guard lk(err_mu_);
  if (error_.empty())
    error_ = std::string(what) + " " + label_ + ": " +
             (err_no ? std::strerror(err_no) : "no progress (0 bytes written)");
  failed_.store(true, std::memory_order_release);
}

// Wakes a producer blocked in reserve_slow(); taking mu_ orders this after its predicate check.
void Writer::release_producer() {
  { std::lock_guard lk(mu_); }
  free_cv_.notify_all();
}

// O_DIRECT refused at write time (some filesystems accept the open): continue buffered on the
// same open file description (F_SETFL may toggle O_DIRECT; the registered file is the same file).
bool Writer::disable_direct() {
  if (!direct_.load()) return false;
  const int fl = fcntl(fd_, F_GETFL);
  if (fl < 0 || fcntl(fd_, F_SETFL, fl & ~O_DIRECT) != 0) return false;
  direct_.store(false);
  return true;
}

// ---------------------------------------------------------------------------------------------
// writer thread

void Writer::run() {
  pthread_setname_np(pthread_self(), "ehp-writer");
  arm_event();

  // The writer wakes every flush_interval/2 so that data committed just after a wakeup is on
  // file within flush_interval even if the producer goes idle.
  const uint64_t tick_ns = uint64_t(opts_.flush_interval_ms) * 500'000u;
  uint64_t flush_due = tick_ns ? now_ns() + tick_ns : UINT64_MAX;
  bool truncated = false;
  Sealed final_entry;
  bool have_final = false;
  Sealed batch[64];

  for (;;) {
    woken_ = false;  // any wakeup consumed from here on makes step 4 look again instead of sleeping
    // 1. Take what the producer sealed. A stream keeps one write in flight (no offsets).
    for (;;) {
      unsigned n = 0;
      {
        std::lock_guard lk(mu_);
        while (sealed_count_ > 0 && n < 64 && !have_final) {
          if (stream_ && !failed() && (inflight_ > 0 || n > 0)) break;
          Sealed& s = sealed_q_[sealed_head_];
          sealed_head_ = (sealed_head_ + 1) % (nslots_ + 1);
          sealed_count_--;
          if (s.final) {
            final_entry = s;
            have_final = true;
          } else {
            batch[n++] = s;
          }
        }
      }
      if (n > 0 && !stream_) {
        uint64_t end = 0;
        for (unsigned i = 0; i < n; i++)
          end = std::max(end, batch[i].file_off + (batch[i].len_bytes & ~(align_bytes_ - 1)));
        preallocate(end);
        size_ahead(end);
      }
      for (unsigned i = 0; i < n; i++) submit_sealed(batch[i]);
      if (n == 0 || stream_) break;
    }

    // 2. After an error: let in-flight I/O finish, cut the file back to a complete block,
    //    unblock the producer, then only wait for close().
    if (failed() && !truncated) {
      drain_inflight();
      truncate_after_error();
      truncated = true;
      release_producer();
    }
    if (have_final) {
      drain_inflight();
      if (!failed()) {
        if (final_entry.slot != kNoSlot)
          partial_flush(final_entry.slot, final_entry.seq, final_entry.file_off,
                        final_entry.len_bytes);
        if (!failed() && regular_file_ && final_entry.slot != kNoSlot) {
          // Cut off a trailing filler block (pad_tail), and give back the space allocated ahead
          // and not written (ftruncate to the same size frees blocks past EOF on ext4/xfs).
          const uint64_t real_end = final_entry.file_off + final_entry.len_bytes;
          struct stat st {};
          if (fstat(fd_, &st) == 0 && (uint64_t(st.st_size) > real_end || prealloc_tried_) &&
              uint64_t(st.st_size) >= real_end) {
            if (ftruncate(fd_, off_t(real_end)) != 0)
              set_error("truncate", errno);
            else
              size_end_ = real_end;
          }
        }
        if (!failed() && opts_.fsync_on_close && fsync(fd_) != 0 &&
            !(stream_ && (errno == EINVAL || errno == EROFS)))  // pipes/ttys cannot fsync
          set_error("fsync", errno);
        if (failed()) {
          drain_inflight();
          truncate_after_error();
        }
      }
      break;
    }

    // 3. Timed or requested flush of the buffer the producer is still filling.
    uint64_t now = now_ns();
    if (flush_requested_.exchange(false, std::memory_order_acq_rel)) flush_due = now;
    if (!failed() && now >= flush_due) {
      const bool done = try_partial_flush();
      now = now_ns();
      if (!done)  // the producer was switching buffers: data is moving, look again shortly
        flush_due = now + kFlushRetryNs;
      else
        flush_due = tick_ns ? now + tick_ns : UINT64_MAX;
      continue;  // re-check the queue before sleeping
    }

    // 4. Sleep until a completion, a wakeup from the producer, or the next flush. A wakeup
    //    already consumed by a drain above (e.g. close() racing the error path) must not be lost.
    if (woken_) continue;
    const long wait_ns = flush_due == UINT64_MAX || failed() ? -1 : long(flush_due - now);
    reap(true, wait_ns);
  }
  drain_inflight();
}

// Writes the aligned part of a sealed buffer (the rest is carried into the next buffer).
void Writer::submit_sealed(const Sealed& s) {
  Slot& slot = slots_[s.slot];
  const size_t aligned = s.len_bytes & ~(align_bytes_ - 1);
  // partial_flush() may already have written the start of this buffer for good.
  const size_t start = flushed_seq_ == s.seq ? std::min(flushed_final_bytes_, aligned) : 0;
  if (failed() || aligned <= start) {
    std::lock_guard lk(mu_);
    free_list_[free_count_++] = s.slot;
    free_cv_.notify_one();
    return;
  }
  slot.req_pos = start;
  slot.req_start = start;
  slot.req_end = aligned;
  slot.req_file_off = s.file_off;
  slot.req_boundary = s.boundary;
  slot.req_sealed_len = s.len_bytes;
  slot.req_done = false;
  slot.req_failed = false;
  fifo_[(fifo_head_ + fifo_count_++) % nslots_] = s.slot;
  inflight_++;
  submit_write(s.slot);  // (space was preallocated for the whole batch in run())
}

void Writer::preallocate(uint64_t end) {
  if (!prealloc_on_ || end <= prealloc_end_) return;
  constexpr uint64_t kMiB = 1ull << 20;
  const uint64_t from = prealloc_end_;
  const uint64_t to = (end + opts_.prealloc_bytes + kMiB - 1) & ~(kMiB - 1);
  prealloc_tried_ = true;  // even a failed call may have allocated some extents
  if (fallocate(fd_, FALLOC_FL_KEEP_SIZE, off_t(from), off_t(to - from)) == 0) {
    prealloc_end_ = to;
    st_prealloc_.fetch_add(1, std::memory_order_relaxed);
  } else {
    // Not supported here, or no space: write without it (a full disk is then reported by the
    // write that hits it, with the usual clean stop).
    prealloc_on_ = false;
  }
}

// Sets the file size to `end` before writes up to there are submitted (WriterOptions::size_ahead).
// Only grows the file: size_end_ follows every write and cut, so a smaller end is a no-op.
void Writer::size_ahead(uint64_t end) {
  if (!size_ahead_on_ || !regular_file_ || !direct_.load(std::memory_order_relaxed) ||
      end <= size_end_)
    return;
  // Only over space allocated ahead (unwritten extents): over a hole ext4 refuses the
  // non-blocking write and io_uring punts it to io-wq again, where a kill can cancel it and
  // leave zeros. Without preallocation the writes stay extending, as before.
  if (!prealloc_on_ || end > prealloc_end_) return;
  if (end > fsize_limit_) {  // ftruncate past the limit raises SIGXFSZ; short writes do not
    size_ahead_on_ = false;
    return;
  }
  if (ftruncate(fd_, off_t(end)) != 0) {
    size_ahead_on_ = false;  // e.g. EPERM on an append-only file: extending writes still work
    return;
  }
  size_end_ = end;
  st_size_ahead_.fetch_add(1, std::memory_order_relaxed);
}

void Writer::submit_write(unsigned slot_index) {
  io_uring* ring = &ring_->ring;
  Slot& slot = slots_[slot_index];
  const uint8_t* p = slot.data + slot.req_pos;
  const size_t len = slot.req_end - slot.req_pos;
  const uint64_t off = slot.req_file_off + slot.req_pos;
  // After a short O_DIRECT write the rest may be unaligned: send it through the buffered fd.
  const bool use_tail = direct_.load(std::memory_order_relaxed) &&
                        ((off | len | reinterpret_cast<uintptr_t>(p)) & (kDirectAlign - 1)) != 0;
  io_uring_sqe* sqe = get_sqe(ring);
  const int fd = ring_->fixed_files ? (use_tail ? 1 : 0) : (use_tail ? tail_fd_ : fd_);
  // Streams write at the file position (-1): pipes have none, and a redirected stdout has one.
  const uint64_t sqe_off = stream_ ? uint64_t(-1) : off;
  if (ring_->fixed_bufs)
    io_uring_prep_write_fixed(sqe, fd, p, unsigned(len), sqe_off, int(slot_index));
  else
    io_uring_prep_write(sqe, fd, p, unsigned(len), sqe_off);
  if (ring_->fixed_files) sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, slot_index);
  st_submitted_.fetch_add(1, std::memory_order_relaxed);
}

void Writer::on_write_done(unsigned slot_index, int res) {
  Slot& slot = slots_[slot_index];
  const size_t len = slot.req_end - slot.req_pos;
  if (res > 0) {
    st_written_.fetch_add(uint64_t(res), std::memory_order_relaxed);
    slot.req_pos += std::min(size_t(res), len);
    note_size(slot.req_file_off + slot.req_pos);
    if (slot.req_pos == slot.req_end) {
      slot.req_done = true;
      inflight_--;
      complete_in_order();
      return;
    }
    // Short write (file size limit, nearly full filesystem, pipe): resubmit the rest from where
    // it stopped. Also after another request failed: the retry either extends the contiguous
    // data on file or reports why it cannot.
    st_short_.fetch_add(1, std::memory_order_relaxed);
    submit_write(slot_index);
    return;
  }
  if (res == -EINTR || res == -EAGAIN) {
    submit_write(slot_index);
    return;
  }
  if (res == -EINVAL && disable_direct()) {  // O_DIRECT refused by this filesystem at write time
    submit_write(slot_index);
    return;
  }
  set_error("write", -res);  // res == 0: no progress on a regular file, reported as such
  slot.req_failed = true;
  inflight_--;
}

// Retire finished requests in file order: the durable prefix only grows over contiguous data.
// Slots are freed in the same order, which keeps the FIFO bounded by the slot count.
//
// The aligned part a request writes usually ends inside a pcapng block, so the file would end
// mid-block until the next buffer's write lands: a SIGKILL then leaves a file the readers call
// "cut short" (it happened on every kill under a flood). When the newest retired request is
// the end of the file and nothing else is in flight, its tail up to the block boundary (bytes
// the slot still holds; the next buffer starts with a copy of them and rewrites them later) is
// written through the buffered fd before the slot is freed: one small pwrite per buffer.
void Writer::complete_in_order() {
  unsigned freed = 0;
  while (fifo_count_ > 0) {
    const unsigned index = fifo_[fifo_head_];
    Slot& slot = slots_[index];
    if (!slot.req_done) break;
    durable_end_ = std::max(durable_end_, slot.req_file_off + slot.req_end);
    durable_boundary_ = std::max(durable_boundary_, slot.req_boundary);
    const bool newest = fifo_count_ == 1 || !slots_[fifo_[(fifo_head_ + 1) % nslots_]].req_done;
    // Only with nothing else in flight: the next buffer's O_DIRECT write covers the same 4 KiB
    // block, and a buffered write racing it makes the kernel fail the page cache invalidation
    // (fsync then returns EIO). Serialized like partial_flush(), the overlap is harmless.
    if (newest && inflight_ == 0 && !stream_ && !failed() && slot.req_sealed_len > slot.req_end &&
        durable_end_ == slot.req_file_off + slot.req_end) {
      const uint64_t tail_end = slot.req_file_off + slot.req_sealed_len;
      if (write_sync(true, slot.data + slot.req_end, slot.req_sealed_len - slot.req_end,
                     slot.req_file_off + slot.req_end))
        durable_boundary_ = std::max(durable_boundary_, tail_end);
    }
    {
      std::lock_guard lk(mu_);
      free_list_[free_count_++] = index;
    }
    fifo_head_ = (fifo_head_ + 1) % nslots_;
    fifo_count_--;
    freed++;
  }
  if (freed) free_cv_.notify_one();
}

// Processes completions; with wait, blocks until at least one arrives or timeout_ns passes
// (timeout_ns < 0: no timeout).
void Writer::reap(bool wait, long timeout_ns) {
  io_uring* ring = &ring_->ring;
  if (wait) {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{};
    if (timeout_ns >= 0) {
      ts.tv_sec = timeout_ns / 1'000'000'000L;
      ts.tv_nsec = timeout_ns % 1'000'000'000L;
    }
    int r = io_uring_submit_and_wait_timeout(ring, &cqe, 1, timeout_ns >= 0 ? &ts : nullptr,
                                             nullptr);
    (void)r;  // -ETIME on timeout, -EINTR on a signal: both just mean "look again"
  } else {
    io_uring_submit(ring);
  }
  unsigned head, seen = 0;
  io_uring_cqe* cqe;
  bool rearm = false;
  io_uring_for_each_cqe(ring, head, cqe) {
    seen++;
    const uint64_t tag = io_uring_cqe_get_data64(cqe);
    if (tag == kEventTag) {
      rearm = true;
      woken_ = true;
    }
    else
      on_write_done(unsigned(tag), cqe->res);
  }
  io_uring_cq_advance(ring, seen);
  if (rearm) arm_event();
}

// Queues the eventfd read that wakes the writer when the producer signals (user_data kEventTag).
void Writer::arm_event() {
  io_uring_sqe* sqe = get_sqe(&ring_->ring);
  io_uring_prep_read(sqe, event_fd_, &event_buf_, sizeof event_buf_, 0);
  io_uring_sqe_set_data64(sqe, kEventTag);
}

void Writer::drain_inflight() {
  while (inflight_ > 0) reap(true, -1);
  io_uring_submit(&ring_->ring);  // e.g. a re-armed eventfd read
  complete_in_order();
}

// Timed/explicit flush: write the committed part of the buffer the producer is filling.
// Runs with no write in flight and an empty sealed queue, so the file is contiguous up to it
// (and, for streams, nothing is reordered). mu_ is held so the producer cannot seal or recycle
// the buffer meanwhile; it can keep appending past `committed`, bytes this never reads.
bool Writer::try_partial_flush() {
  {
    // Data still moving (buffers sealed or in flight: the one being filled follows them soon):
    // look again shortly. Draining every write in flight first, on every retry, collapsed the
    // queue depth under sustained load.
    std::lock_guard lk(mu_);
    if (sealed_count_ > 0 || cur_slot_ < 0 || inflight_ > 0) return false;
  }
  drain_inflight();
  if (failed()) return true;
  unsigned index;
  uint64_t seq, file_off;
  size_t len;
  {
    std::lock_guard lk(mu_);
    if (sealed_count_ > 0 || cur_slot_ < 0) return false;  // data is moving anyway; retry soon
    index = unsigned(cur_slot_);
    seq = slots_[index].seq;
    file_off = slots_[index].file_off;
    len = slots_[index].committed.load(std::memory_order_acquire);
  }
  if (flushed_seq_ == seq && len <= flushed_total_bytes_) return true;  // nothing new
  if (flushed_seq_ != seq && len == 0) return true;
  // Written without the lock: a blocking write (a pipe whose reader is slow) must not stall the
  // producer on mu_, outside reserve()'s counted wait. Only this thread frees the slot, so its
  // bytes [0, len) stay put even if the producer seals it meanwhile (submit_sealed then starts
  // after what this wrote).
  partial_flush(index, seq, file_off, len);
  return true;
}

// Writes [already final, len) of a buffer synchronously: the aligned part through fd_ (O_DIRECT,
// final), the unaligned tail through tail_fd_ (rewritten by O_DIRECT later, with more after it).
bool Writer::partial_flush(unsigned slot_index, uint64_t seq, uint64_t file_off, size_t len) {
  Slot& slot = slots_[slot_index];
  const size_t aligned = len & ~(align_bytes_ - 1);
  size_t start = flushed_seq_ == seq ? std::min(flushed_final_bytes_, aligned) : 0;
  st_flushes_.fetch_add(1, std::memory_order_relaxed);
  if (aligned > start) {
    if (!write_sync(false, slot.data + start, aligned - start, file_off + start)) return false;
    start = aligned;
  }
  flushed_seq_ = seq;
  flushed_final_bytes_ = start;
  if (len > aligned) {
    if (!write_sync(true, slot.data + aligned, len - aligned, file_off + aligned)) return false;
  }
  flushed_total_bytes_ = len;
  // file_off + len ends a block, and everything before it is on file.
  durable_end_ = std::max(durable_end_, file_off + len);
  durable_boundary_ = std::max(durable_boundary_, file_off + len);
  return true;
}

// pad_tail: writes the n < 4 KiB tail bytes at the 4 KiB-aligned file_off with O_DIRECT,
// followed by a filler block up to the next 4 KiB boundary. Returns 1 when done, 0 to fall back
// to the buffered path (not O_DIRECT, refused, short), -1 on a write error (already set).
int Writer::write_padded_tail(const uint8_t* p, size_t n, uint64_t file_off) {
  if (!bounce_ || stream_ || !direct_.load() || n == 0 || n >= kDirectAlign ||
      (file_off & (kDirectAlign - 1)) != 0)
    return 0;
  size_t gap = kDirectAlign - n;  // n is a multiple of 4 (it ends a block)
  if (gap < 16) gap += kDirectAlign;
  std::memcpy(bounce_, p, n);
  if (pcapng::encode_filler(std::span<uint8_t>(bounce_ + n, gap), gap) != gap) return 0;
  const size_t total = n + gap;
  for (;;) {
    ssize_t r = ::pwrite(fd_, bounce_, total, off_t(file_off));
    st_submitted_.fetch_add(1, std::memory_order_relaxed);
    if (r < 0 && errno == EINTR) continue;
    if (r == ssize_t(total)) {
      note_size(file_off + total);
      st_written_.fetch_add(uint64_t(n), std::memory_order_relaxed);
      if (file_off <= durable_end_) durable_end_ = std::max(durable_end_, file_off + n);
      return 1;
    }
    if (r < 0 && errno != EINVAL && errno != EFBIG && errno != ENOSPC) {
      set_error("write", errno);
      return -1;
    }
    // Refused or short (file size limit, nearly full disk): the buffered path writes exactly
    // the tail. First cut off whatever filler is on file past the durable data (this write's
    // partial one, or an earlier flush's), never the durable data itself: a later error cut
    // to a block boundary must not extend the file with zeros.
    const uint64_t keep = std::max(durable_end_, file_off);
    struct stat st {};
    if (r > 0) note_size(file_off + uint64_t(r));
    if (fstat(fd_, &st) == 0 && uint64_t(st.st_size) > keep) {
      if (ftruncate(fd_, off_t(keep)) != 0) {
        set_error("truncate", errno);
        return -1;
      }
      size_end_ = keep;
    }
    return 0;
  }
}

// Blocking write with the same short-write handling as the ring path.
bool Writer::write_sync(bool tail, const uint8_t* p, size_t n, uint64_t file_off) {
  if (tail && opts_.pad_tail) {
    const int r = write_padded_tail(p, n, file_off);
    if (r != 0) return r > 0;
  }
  while (n > 0) {
    const bool unaligned =
        ((file_off | n | reinterpret_cast<uintptr_t>(p)) & (kDirectAlign - 1)) != 0;
    const bool via_tail = !stream_ && (tail || (direct_.load() && unaligned));
    ssize_t r;
    if (stream_)
      r = ::write(fd_, p, n);
    else
      r = ::pwrite(via_tail ? tail_fd_ : fd_, p, n, off_t(file_off));
    st_submitted_.fetch_add(1, std::memory_order_relaxed);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EINVAL && !via_tail && disable_direct()) continue;
    if (r <= 0) {
      set_error("write", r < 0 ? errno : 0);
      return false;
    }
    st_written_.fetch_add(uint64_t(r), std::memory_order_relaxed);
    if (!stream_) note_size(file_off + uint64_t(r));
    if (size_t(r) < n) st_short_.fetch_add(1, std::memory_order_relaxed);
    if (file_off <= durable_end_) durable_end_ = std::max(durable_end_, file_off + uint64_t(r));
    p += r;
    n -= size_t(r);
    file_off += uint64_t(r);
  }
  return true;
}

// After an error, with nothing in flight: find the end of the contiguous data on file, then the
// last complete block inside it, and cut the file there. Known boundaries come from commit()
// (durable_boundary_); past the last one, the pcapng block lengths (both copies equal, >= 12,
// multiple of 4) are walked over what is actually on file.
void Writer::truncate_after_error() {
  // Requests retire in order; the first unfinished one contributes what it got written.
  complete_in_order();
  if (fifo_count_ > 0) {
    Slot& slot = slots_[fifo_[fifo_head_]];
    if (slot.req_file_off + slot.req_start <= durable_end_)
      durable_end_ = std::max(durable_end_, slot.req_file_off + slot.req_pos);
  }
  // Everything else in the FIFO failed or is beyond a gap; give the slots back.
  {
    std::lock_guard lk(mu_);
    while (fifo_count_ > 0) {
      free_list_[free_count_++] = fifo_[fifo_head_];
      fifo_head_ = (fifo_head_ + 1) % nslots_;
      fifo_count_--;
    }
  }
  if (stream_ || !regular_file_) return;
  uint64_t cut = std::min(durable_boundary_, durable_end_);
  if (durable_end_ > cut) {
    std::vector<uint8_t> buf(durable_end_ - cut);
    size_t got = 0;
    while (got < buf.size()) {
      ssize_t r = ::pread(tail_fd_, buf.data() + got, buf.size() - got, off_t(cut + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      got += size_t(r);
    }
    size_t pos = 0;
    while (pos + 12 <= got) {
      const uint32_t blen = load_u32(buf.data() + pos + 4);
      if (blen < 12 || blen % 4 != 0 || pos + blen > got) break;
      if (load_u32(buf.data() + pos + blen - 4) != blen) break;
      pos += blen;
    }
    cut += pos;
  }
  truncated_at_.store(cut, std::memory_order_relaxed);
  if (ftruncate(tail_fd_, off_t(cut)) == 0) {
    size_end_ = cut;
    fdatasync(tail_fd_);
  }
}

}  // namespace ehp::output
