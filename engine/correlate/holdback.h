// SPDX-License-Identifier: BSD-2-Clause
// Hold-back: the ordering rule that makes captured TLS sessions decrypt from the file alone.
//
// tshark/Wireshark decrypt a session only if its Decryption Secrets Block comes before the
// session's first encrypted record in file order (docs/facts.md, "Wireshark only decrypts with keys
// it has already read"). The uprobes deliver the secrets only after the handshake packets have
// gone through TC, so from a ClientHello on, a connection's packets are kept here until the
// keylog lines for that ClientHello's random arrive; then the DSB is written, followed by the
// held packets in their original order. Flows whose secrets never come are released after
// `hold_ns` (counted); caps bound the memory. Nothing else ever waits: packets of flows that
// are not held go straight to the sink.
//
// Only sessions that can get keys are held (KeyPolicy): on a gateway most TLS is forwarded or
// spoken by untraced stacks, and holding it would only delay it and write it out of time order.
// Consequences for the output: it is in capture (time) order except for held flows, whose
// packets follow later packets of other flows by as long as their keys took (the largest such
// step back is reported: HoldBackStats::max_step_back_ns).
// Every DSB precedes its session's ClientHello: a key that arrives before its ClientHello is
// written at once; one that arrives while the session is held is written right before it.
// Hold storage: whole 16 KiB chunks from a slab pool, so no allocation per packet; the flow and
// "remembered random" tables allocate per session only.
//
// Single-threaded: driven by one serial stage (see correlator.h).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/process.h"
#include "net/frame.h"

namespace ehp::correlate {

// One captured packet as the writer needs it. `ts_ns` is Unix time in ns and defines the clock
// that HoldBack::tick() uses.
struct PacketMeta {
  uint64_t ts_ns = 0;
  uint32_t interface_id = 0;
  uint16_t linktype = 0;  // LINKTYPE_* of the frame (ehp::net::kLinktypeEthernet / kLinktypeRaw)
  uint8_t direction = 0;  // 0 inbound, 1 outbound
  uint32_t wire_len = 0, cap_len = 0;
  Process proc;  // the packet's process (base/process.h), copied whole from the capture
};

// Where the ordered output goes (sink/pcapng_sink.h implements it on top of the pcapng encoders and the
// io_uring writer). Calls are serialised, but may come from any thread.
class Sink {
 public:
  virtual ~Sink() = default;
  // `frame` may point into ring memory or hold-back storage that is reused after the call
  // returns: copy it now.
  virtual void packet(const PacketMeta& meta, std::span<const uint8_t> frame) = 0;
  // NSS key log lines ('\n'-terminated) for one session -> one Decryption Secrets Block.
  virtual void secrets(std::string_view keylog_lines) = 0;
  // Bracket a run of packet()/secrets() calls from one thread (the correlator does, per batch),
  // so a sink that locks per call can lock once per batch instead. Default: nothing.
  virtual void batch_begin() {}
  virtual void batch_end() {}
};

// Decides, once per session (at its first ClientHello/ServerHello packet), whether keys can come
// for it: only then is it held. `fi` is the decoded packet (addresses, ports). Without a policy
// every session is held (replay of a capture with DSBs, tests).
class KeyPolicy {
 public:
  virtual ~KeyPolicy() = default;
  virtual bool keyable(const PacketMeta& meta, const ehp::net::FrameInfo& fi) = 0;
};

// The same answer for every session (replay: whether the input can give keys at all).
class FixedKeyPolicy final : public KeyPolicy {
 public:
  explicit FixedKeyPolicy(bool yes) : yes_(yes) {}
  bool keyable(const PacketMeta&, const ehp::net::FrameInfo&) override { return yes_; }

 private:
  bool yes_;
};

// Sees every TCP segment the hold-back decodes, before the hold-back acts on it (the key check,
// tls/verify.h, follows sessions this way without decoding frames a second time). Called on
// the hold-back stage's thread.
class SegmentObserver {
 public:
  virtual ~SegmentObserver() = default;
  virtual void on_segment(const PacketMeta& meta, const ehp::net::FrameInfo& fi, std::span<const uint8_t> payload,
                          const ehp::net::TlsHello& hello) = 0;
  // A ClientHello the key policy answered "no key can come" for: its session need not be
  // followed (the key check forgets it; on a gateway that is most TLS).
  virtual void on_not_keyable(const ehp::net::FrameInfo& fi, const ehp::net::TlsHello& hello) {}
};

struct HoldBackConfig {
  uint64_t hold_ns = 3'000'000'000;      // --hold-ms: how long a flow waits for its secrets
  size_t max_flow_bytes = 8u << 20;      // hold storage one flow may use
  size_t max_total_bytes = 256u << 20;   // hold storage all flows may use together
  size_t max_flows = 65536;              // flows held at once
  // How long a client_random whose keys are already written (or whose flow gave up) is
  // remembered, so that a late/retransmitted ClientHello with it is not held again.
  uint64_t remember_ns = 30'000'000'000;
  size_t remember_max = 65536;
};

// Sessions are counted (one flow can carry several sessions in sequence on one 5-tuple).
struct HoldBackStats {
  uint64_t flows_held = 0;          // sessions whose packets were held (cumulative)
  uint64_t released_keyed = 0;      // released right after their DSB
  uint64_t released_timeout = 0;    // released without keys after hold_ns, or by flush_all()
  uint64_t released_overflow = 0;   // released early because a byte/flow cap was hit
  uint64_t packets_held = 0;        // packets copied into hold storage (cumulative)
  uint64_t bytes_held_now = 0;      // hold storage in use now (whole chunks)
  uint64_t dsb_written = 0;         // sink.secrets() calls
  uint64_t keys_without_flow = 0;   // keys whose ClientHello was not (or no longer) held
  uint64_t packets_passed = 0;      // packets given to the sink without being held
  uint64_t flows_held_now = 0;      // flows currently holding packets
  uint64_t hello_known_keys = 0;    // ClientHellos not held because their keys were already written
  uint64_t not_keyable = 0;         // sessions not held: KeyPolicy said no key can come for them
  // Keys that came for a session the policy did not hold: its DSB follows its ClientHello in
  // the file, so it will not decrypt (the policy's miss, made visible).
  uint64_t keyed_not_held = 0;
  // The largest amount a packet's timestamp stepped back behind one written before it.
  uint64_t max_step_back_ns = 0;
  uint64_t packets_out_of_order = 0;  // packets written with a timestamp older than an earlier one
};

class HoldBack {
 public:
  // `policy` (may be null: hold every session) must outlive the HoldBack.
  HoldBack(HoldBackConfig cfg, Sink& sink, KeyPolicy* policy = nullptr);
  ~HoldBack();
  HoldBack(const HoldBack&) = delete;
  HoldBack& operator=(const HoldBack&) = delete;

  // Packets must arrive in capture (timestamp) order. Also expires sessions whose hold_ns has
  // passed relative to meta.ts_ns, so a replay behaves the same as a live capture.
  void on_packet(const PacketMeta& meta, std::span<const uint8_t> frame);
  // The keylog lines of the session with `client_random`. Writes the DSB at once: either right
  // before that session's held ClientHello (then releases the flow), or -- when the ClientHello
  // has not been seen -- now, which is still earlier in the file than it.
  void on_keys(const std::array<uint8_t, 32>& client_random, std::string_view keylog_lines);
  // Releases sessions whose secrets did not come within hold_ns of their first held packet.
  // `now_ns` is on the PacketMeta::ts_ns clock. O(1) when nothing expires, otherwise the work is
  // the released packets themselves; call it often (every batch, every 100 ms when idle).
  void tick(uint64_t now_ns);
  // At shutdown: releases everything still held (counted as timeout releases).
  void flush_all();
  HoldBackStats stats() const;
  // `o` (may be null) sees every TCP segment from now on; it must outlive the HoldBack.
  void set_observer(SegmentObserver* o) { observer_ = o; }
  // The stage's clock: the latest packet or tick time (0 before the first).
  uint64_t now_ns() const { return now_ns_; }

  // Bytes of one hold-storage chunk (caps are enforced in whole chunks).
  static constexpr size_t kChunkBytes = 16 * 1024;

 private:
  struct Chunk;
  struct Flow;
  struct Session;
  struct Expiry {
    uint32_t slot;
    uint64_t session_id;
    uint64_t deadline_ns;
  };
  struct Remembered {
    uint64_t until_ns;
  };

  // Hold storage: fixed chunks carved from slabs, recycled through a free list. Memory never
  // exceeds max_total_bytes (+ one slab of rounding).
  Chunk* alloc_chunk();
  void free_chunk(Chunk* c);

  uint32_t start_flow(const ehp::net::FlowKey& key, uint64_t ts_ns);
  uint32_t add_session(uint32_t slot, bool random_known, const std::array<uint8_t, 32>& random,
                       uint64_t ts_ns);
  bool append(uint32_t slot, const PacketMeta& meta, std::span<const uint8_t> frame);
  bool make_room(uint32_t slot, size_t chunks_needed);
  // Emits records of the flow's front session(s) while they are resolved (keyed / expired).
  void release_resolved(uint32_t slot);
  // Emits the front session unconditionally, counting it in `counter`.
  void release_front(uint32_t slot, uint64_t& counter);
  void release_all_sessions(uint32_t slot, uint64_t& counter);
  void emit_until(uint32_t slot, uint64_t end_seq);
  void drop_flow(uint32_t slot);
  void expire(uint64_t now_ns);
  void remember_random(const std::array<uint8_t, 32>& random, uint64_t now_ns);
  bool is_remembered(const std::array<uint8_t, 32>& random, uint64_t now_ns);
  void remember_flow(const ehp::net::FlowKey& key, uint64_t now_ns);
  bool is_remembered_flow(const ehp::net::FlowKey& key, uint64_t now_ns);
  bool evict_oldest_flow(uint32_t except_slot);
  // Every packet reaches the sink through here (time-order accounting).
  void emit(const PacketMeta& meta, std::span<const uint8_t> frame);
  void remember_passed(const std::array<uint8_t, 32>& random, uint64_t now_ns);

  HoldBackConfig cfg_;
  Sink& sink_;
  KeyPolicy* policy_;
  SegmentObserver* observer_ = nullptr;
  uint64_t max_emitted_ts_ = 0;
  HoldBackStats st_{};
  uint64_t now_ns_ = 0;  // latest packet/tick time seen
  uint64_t next_session_id_ = 1;

  std::vector<std::unique_ptr<Chunk[]>> slabs_;
  Chunk* free_chunks_ = nullptr;
  size_t chunks_total_ = 0, chunks_used_ = 0, chunks_max_ = 0;

  std::vector<Flow> flows_;  // slots; free ones chained through free_slots_
  std::vector<uint32_t> free_slots_;
  std::unordered_map<ehp::net::FlowKey, uint32_t, ehp::net::FlowKeyHash> by_key_;
  std::unordered_map<std::array<uint8_t, 32>, uint32_t, ehp::net::ClientRandomHash> by_random_;  // held sessions
  std::deque<Expiry> expiries_;  // in deadline order (packets arrive in time order)

  // Client randoms whose DSB is written (or whose session gave up): a later ClientHello with one
  // of them is not held. Flows that just finished holding: a straggling ServerHello on them does
  // not start holding again. Both bounded in time and count (FIFO).
  std::unordered_map<std::array<uint8_t, 32>, Remembered, ehp::net::ClientRandomHash> known_randoms_;
  std::deque<std::pair<std::array<uint8_t, 32>, uint64_t>> known_randoms_fifo_;
  std::unordered_map<ehp::net::FlowKey, Remembered, ehp::net::FlowKeyHash> known_flows_;
  std::deque<std::pair<ehp::net::FlowKey, uint64_t>> known_flows_fifo_;
  // Client randoms of ClientHellos passed because the policy said no key can come: a key that
  // comes anyway is counted (keyed_not_held). Bounded like known_randoms_.
  std::unordered_map<std::array<uint8_t, 32>, Remembered, ehp::net::ClientRandomHash> passed_randoms_;
  std::deque<std::pair<std::array<uint8_t, 32>, uint64_t>> passed_randoms_fifo_;

  std::vector<uint8_t> scratch_;  // reassembles a record that spans chunks
};

}  // namespace ehp::correlate
