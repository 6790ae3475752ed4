// SPDX-License-Identifier: BSD-2-Clause
// The pcapng output of the engine: turns the correlator's ordered stream (packets and key
// log text) into SHB/IDB/DSB/EPB/ISB blocks handed to the io_uring writer, and rotates files
// (-b) so that each file stands alone: its own SHB and IDBs, the DSBs of recent sessions, an ISB.
//
// Threads: packet()/secrets() come from the correlator's serial stage (any thread, one at a
// time); tick(), stats(), close() come from the engine's pump/main threads. An internal mutex
// serialises them, so a time-based rotation never races a block being encoded. It is
// uncontended on the packet path except during a tick (every 100 ms).
//
// Streams ("-", a FIFO such as Wireshark's extcap pipe, a character device) are flushed every
// kStreamFlushMs so a live viewer sees each packet promptly; regular files keep the writer's
// default interval (partial flushes of O_DIRECT files rewrite their tail block).
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <atomic>
#include <mutex>
#include <thread>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/frame.h"
#include "correlate/holdback.h"
#include "output/uring_writer.h"
#include "base/clock.h"

namespace ehp {

struct SinkIface {
  std::string name;
  std::string description;
  uint16_t linktype = 1;
};

struct SinkOptions {
  std::string path;  // "-" = stdout
  std::string filter;
  uint32_t snaplen = 262144;
  bool direct_io = true;
  bool allow_foreign_stream = false;  // extcap --fifo: the FIFO is the calling user's
  uint64_t rotate_bytes = 0;        // -b filesize (0 = off)
  uint64_t rotate_duration_ns = 0;  // -b duration (0 = off)
  uint32_t ring_files = 0;          // -b files (0 = keep all)
  // -a filesize: once the current file holds this many bytes, further packets are not written
  // (stop_reached() turns true) so the file ends within one packet of the limit. 0 = off.
  uint64_t stop_after_bytes = 0;
  // Keys whose ClientHello the sink has not seen yet (they may precede it by up to the hold-back
  // time): repeated at the top of a rotated file, since their session may start there.
  size_t pending_dsb_max = 4096;
  uint64_t pending_dsb_ns = 60'000'000'000;
  // Carry-over of open TLS sessions into the next rotated file (see "Rotation" below).
  size_t carry_max_flow_bytes = 4u << 20;    // one session's history; beyond it, not carried
  size_t carry_max_total_bytes = 64u << 20;  // all sessions' histories together
  uint64_t carry_idle_ns = 600'000'000'000;  // a session silent this long is forgotten
};

// Rotation: Wireshark decrypts a TLS record only if it has seen the session's ClientHello and
// ServerHello (cipher, randoms) and every earlier record of that direction: the AEAD nonce is
// derived from a record counter that advances only on records it decrypted (packet-tls-utils.c:
// "decoder->seq++ ... after successful authentication"). The DSB alone is not enough for a
// keep-alive session whose handshake is in an earlier file. So, while rotating, the sink keeps
// a copy of every payload-carrying packet of each open TLS session (from its ClientHello until
// RST or both FINs) and writes, at the top of each new file: SHB, IDBs, the DSBs of recent and
// carried sessions, then the carried packets in their original order (each EPB comment says
// "carried over"). Bounded by carry_max_flow_bytes / carry_max_total_bytes; sessions over the
// bounds are counted in SinkStats::sessions_not_carried and decrypt only in their first file.
// -b filesize counts the bytes written after the carried part, so a file never rotates on its
// carried history alone.

struct SinkStats {
  uint64_t packets = 0, bytes = 0, dsbs = 0, files = 0, write_failures = 0;
  uint64_t file_bytes = 0;  // bytes in the current file
  bool output_closed = false;  // the stream's reader went away (EPIPE)
  uint64_t sessions_carried = 0;      // session histories written at the top of rotated files
  uint64_t sessions_not_carried = 0;  // open sessions dropped from carry-over (bounds)
  uint64_t carried_bytes_now = 0;     // memory held for carry-over
};

// Max delay between a block being committed and it reaching a pipe/FIFO reader.
inline constexpr unsigned kStreamFlushMs = 100;

class PcapngSink final : public correlate::Sink {
 public:
  static std::unique_ptr<PcapngSink> open(const SinkOptions&, std::vector<SinkIface> ifaces,
                                          std::string* err);
  ~PcapngSink() override;

  void packet(const correlate::PacketMeta&, std::span<const uint8_t> frame) override;
  void batch_begin() override;
  void batch_end() override;
  void secrets(std::string_view keylog_lines) override;

  // Per-interface counters for the closing ISBs.
  void set_interface_drops(uint32_t interface_id, uint64_t ifdrop, uint64_t osdrop);
  // The interface left the system (ip link del): writes its ISB now, with `comment` saying so;
  // the ISBs that close this and later files carry the same comment.
  void interface_gone(uint32_t interface_id, const std::string& comment);
  // Rotation by time is checked here (called from the serial stage's tick).
  void tick(uint64_t now_ns);
  // Writes the ISBs, drains and closes the current file. Returns false with *err on I/O failure.
  bool close(std::string* err);

  bool failed() const;
  bool stop_reached() const;  // SinkOptions::stop_after_bytes was reached
  std::string error() const;
  SinkStats stats() const;
  // Files currently kept (with -b files:N only the last N), oldest first.
  std::vector<std::string> files() const;
  // Packets written for one interface since open() (all files), for the exit summary.
  uint64_t interface_packets(uint32_t interface_id) const;

 private:
  PcapngSink(const SinkOptions&, std::vector<SinkIface>);
  bool open_file(uint64_t now_ns, std::string* err);
  bool finish_file(std::string* err);
  std::string next_name(uint64_t now_ns);
  bool put_block(const void* src, size_t n);
  bool rotate_locked(uint64_t now_ns);
  bool write_epb(const correlate::PacketMeta&, std::span<const uint8_t> frame, bool carried);
  void track_carry(const correlate::PacketMeta&, std::span<const uint8_t> frame);
  void expire_carry(uint64_t now_ns);
  bool write_carried(std::vector<uint8_t>& scratch);
  bool rotating() const { return opt_.rotate_bytes || opt_.rotate_duration_ns; }
  std::string describe_error(const std::string& writer_error) const;

  SinkOptions opt_;
  std::vector<SinkIface> ifaces_;
  std::unique_ptr<output::Writer> writer_;
  struct IfCounters { uint64_t recv = 0, delivered = 0, ifdrop = 0, osdrop = 0; };
  std::vector<IfCounters> ifc_;
  std::vector<std::string> gone_comment_;  // per interface: "" while it exists
  std::vector<uint64_t> if_total_packets_;
  mutable std::mutex mu_;
  // batch_begin()/batch_end(): mu_ held across a correlator batch by this thread, whose
  // packet()/secrets() calls then skip their own locking (no lock per packet).
  std::unique_lock<std::mutex> batch_lock_{mu_, std::defer_lock};
  std::atomic<std::thread::id> batch_owner_{};
  bool locked_by_batch() const {
    return batch_owner_.load(std::memory_order_relaxed) == std::this_thread::get_id();
  }
  bool stream_ = false;  // output is a pipe/FIFO/device: short flush interval
  struct PendingDsb {
    std::string random_hex;  // client_random of its first line (lowercase hex)
    uint64_t since_ns = 0;   // wall clock when it was written
  };
  std::deque<PendingDsb> pending_order_;                       // oldest first, for expiry
  std::unordered_map<std::string, std::string> pending_dsb_;  // random_hex -> DSB lines
  void expire_pending(uint64_t now_ns);
  struct CarriedFlow {
    std::string random_hex;        // its ClientHello's random
    std::vector<uint8_t> history;  // [PacketMeta][u32 len][frame] per payload packet
    uint64_t last_ts_ns = 0;
    uint8_t fins = 0;
  };
  std::unordered_map<net::FlowKey, CarriedFlow, net::FlowKeyHash> carry_;
  size_t carry_bytes_ = 0;
  std::unordered_map<std::string, std::string> dsb_of_carried_;  // random_hex -> DSB lines
  uint64_t carry_expire_at_ns_ = 0;
  uint64_t file_base_bytes_ = 0;
  bool stop_reached_ = false;  // header + DSBs + carried packets of the current file
  std::vector<std::string> files_written_;
  uint64_t file_start_ns_ = 0;
  uint64_t last_ts_ns_ = 0;
  uint32_t file_seq_ = 0;
  SinkStats stats_;
  std::string error_;
};


}  // namespace ehp
