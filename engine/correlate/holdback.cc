// SPDX-License-Identifier: BSD-2-Clause
// Hold-back storage and release order; see holdback.h for the rule it enforces.
//
// Layout: every held flow owns a byte FIFO made of fixed 16 KiB chunks taken from a shared
// pool (slabs of 64 chunks, recycled through a free list: no allocation per packet). A record
// in the FIFO is [RecordHeader][frame bytes]; records may span chunks. A flow carries up to
// kMaxSessions TLS sessions in sequence (same 5-tuple reused); each session remembers the
// record sequence number of its first held packet, so sessions are released front to back and
// each one's DSB precedes its own ClientHello.
#include "correlate/holdback.h"

#include <algorithm>
#include <cstring>
#include <random>

namespace ehp::correlate {
namespace {

constexpr uint8_t kIpprotoTcp = 6;
constexpr size_t kMaxSessions = 4;
constexpr size_t kChunksPerSlab = 64;

struct RecordHeader {
  PacketMeta meta;
  uint32_t frame_len;
};

}  // namespace

struct HoldBack::Chunk {
  static constexpr size_t kData = kChunkBytes - 16;
  Chunk* next;
  uint8_t pad[8];
  uint8_t data[kData];
};

struct HoldBack::Session {
  uint64_t id = 0;
  std::array<uint8_t, 32> random{};
  bool random_known = false;
  bool keyed = false;       // its DSB is written; release as soon as it reaches the front
  uint64_t start_seq = 0;   // first record of this session in the flow's FIFO
};

struct HoldBack::Flow {
  bool in_use = false;
  ehp::net::FlowKey key{};
  std::array<Session, kMaxSessions> sessions{};
  size_t n_sessions = 0;
  Chunk* head = nullptr;  // read side
  Chunk* tail = nullptr;  // write side
  size_t head_off = 0, tail_off = 0;
  uint64_t head_seq = 0, tail_seq = 0;  // next record to emit / to append
  size_t chunks = 0;
};


HoldBack::HoldBack(HoldBackConfig cfg, Sink& sink, KeyPolicy* policy) : cfg_(cfg), sink_(sink), policy_(policy) {
  static_assert(sizeof(Chunk) == kChunkBytes);
  cfg_.max_flows = std::max<size_t>(cfg_.max_flows, 1);
  chunks_max_ = std::max<size_t>(cfg_.max_total_bytes / kChunkBytes, 1);
  scratch_.resize(256 * 1024);
  by_key_.reserve(std::min<size_t>(cfg_.max_flows, 4096));
  by_random_.reserve(std::min<size_t>(cfg_.max_flows, 4096));
}

HoldBack::~HoldBack() = default;

HoldBack::Chunk* HoldBack::alloc_chunk() {
  if (!free_chunks_) {
    if (chunks_total_ >= chunks_max_) return nullptr;
    size_t n = std::min(kChunksPerSlab, chunks_max_ - chunks_total_);
    slabs_.emplace_back(new Chunk[n]);
    Chunk* slab = slabs_.back().get();
    for (size_t i = 0; i < n; ++i) {
      slab[i].next = free_chunks_;
      free_chunks_ = &slab[i];
    }
    chunks_total_ += n;
  }
  Chunk* c = free_chunks_;
  free_chunks_ = c->next;
  c->next = nullptr;
  ++chunks_used_;
  return c;
}

void HoldBack::free_chunk(Chunk* c) {
  c->next = free_chunks_;
  free_chunks_ = c;
  --chunks_used_;
}

void HoldBack::emit(const PacketMeta& meta, std::span<const uint8_t> frame) {
  if (meta.ts_ns < max_emitted_ts_) {
    ++st_.packets_out_of_order;
    st_.max_step_back_ns = std::max(st_.max_step_back_ns, max_emitted_ts_ - meta.ts_ns);
  } else {
    max_emitted_ts_ = meta.ts_ns;
  }
  sink_.packet(meta, frame);
}

// ---- remembered randoms / flows ----------------------------------------------------------

void HoldBack::remember_passed(const std::array<uint8_t, 32>& random, uint64_t now_ns) {
  const uint64_t until = now_ns + cfg_.remember_ns;
  passed_randoms_[random] = Remembered{until};
  passed_randoms_fifo_.emplace_back(random, until);
  while (passed_randoms_fifo_.size() > cfg_.remember_max ||
         (!passed_randoms_fifo_.empty() && passed_randoms_fifo_.front().second <= now_ns)) {
    auto& [r, u] = passed_randoms_fifo_.front();
    auto it = passed_randoms_.find(r);
    if (it != passed_randoms_.end() && it->second.until_ns == u) passed_randoms_.erase(it);
    passed_randoms_fifo_.pop_front();
  }
}

void HoldBack::remember_random(const std::array<uint8_t, 32>& random, uint64_t now_ns) {
  // Keys can arrive before the first packet or tick has given this stage a clock (the first
  // session after start-up): then remember them until the FIFO bound evicts them, otherwise
  // their ClientHello would be held for the whole hold time.
  uint64_t until = now_ns ? now_ns + cfg_.remember_ns : UINT64_MAX;
  known_randoms_[random] = Remembered{until};
  known_randoms_fifo_.emplace_back(random, until);
  while (known_randoms_fifo_.size() > cfg_.remember_max) {
    auto& [r, u] = known_randoms_fifo_.front();
    auto it = known_randoms_.find(r);
    if (it != known_randoms_.end() && it->second.until_ns == u) known_randoms_.erase(it);
    known_randoms_fifo_.pop_front();
  }
}

bool HoldBack::is_remembered(const std::array<uint8_t, 32>& random, uint64_t now_ns) {
  auto it = known_randoms_.find(random);
  return it != known_randoms_.end() && it->second.until_ns > now_ns;
}

void HoldBack::remember_flow(const ehp::net::FlowKey& key, uint64_t now_ns) {
  uint64_t until = now_ns ? now_ns + cfg_.remember_ns : UINT64_MAX;
  known_flows_[key] = Remembered{until};
  known_flows_fifo_.emplace_back(key, until);
  while (known_flows_fifo_.size() > cfg_.remember_max) {
    auto& [k, u] = known_flows_fifo_.front();
    auto it = known_flows_.find(k);
    if (it != known_flows_.end() && it->second.until_ns == u) known_flows_.erase(it);
    known_flows_fifo_.pop_front();
  }
}

bool HoldBack::is_remembered_flow(const ehp::net::FlowKey& key, uint64_t now_ns) {
  auto it = known_flows_.find(key);
  return it != known_flows_.end() && it->second.until_ns > now_ns;
}

// ---- flows and sessions ------------------------------------------------------------------

uint32_t HoldBack::start_flow(const ehp::net::FlowKey& key, uint64_t ts_ns) {
  if (by_key_.size() >= cfg_.max_flows) evict_oldest_flow(UINT32_MAX);
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(flows_.size());
    flows_.emplace_back();
  }
  Flow& f = flows_[slot];
  f = Flow{};
  f.in_use = true;
  f.key = key;
  by_key_.emplace(key, slot);
  ++st_.flows_held_now;
  return slot;
}

uint32_t HoldBack::add_session(uint32_t slot, bool random_known,
                               const std::array<uint8_t, 32>& random, uint64_t ts_ns) {
  if (flows_[slot].n_sessions == kMaxSessions) {
    // Pathological reuse of one 5-tuple: give up on the oldest session rather than grow.
    const ehp::net::FlowKey key = flows_[slot].key;
    release_front(slot, st_.released_overflow);
    if (!flows_[slot].in_use) slot = start_flow(key, ts_ns);
  }
  Flow& g = flows_[slot];
  Session& s = g.sessions[g.n_sessions++];
  s = Session{};
  s.id = next_session_id_++;
  s.start_seq = g.tail_seq;
  s.random_known = random_known;
  s.random = random;
  ++st_.flows_held;
  if (random_known) {
    if (is_remembered(random, ts_ns)) {
      s.keyed = true;  // its DSB is already in the file, earlier than this ClientHello
    } else {
      by_random_.emplace(random, slot);
    }
  }
  expiries_.push_back(Expiry{slot, s.id, ts_ns + cfg_.hold_ns});
  return slot;
}

// Appends one record; false if the caps do not allow it (nothing was written then).
bool HoldBack::append(uint32_t slot, const PacketMeta& meta, std::span<const uint8_t> frame) {
  const size_t need = sizeof(RecordHeader) + frame.size();
  {
    Flow& f = flows_[slot];
    size_t avail = f.tail ? Chunk::kData - f.tail_off : 0;
    size_t chunks_needed = need > avail ? (need - avail + Chunk::kData - 1) / Chunk::kData : 0;
    if ((f.chunks + chunks_needed) * kChunkBytes > std::max(cfg_.max_flow_bytes, kChunkBytes))
      return false;
    if (!make_room(slot, chunks_needed)) return false;
  }
  Flow& f = flows_[slot];
  RecordHeader h{meta, static_cast<uint32_t>(frame.size())};
  auto write = [&](const uint8_t* src, size_t n) {
    while (n > 0) {
      if (!f.tail || f.tail_off == Chunk::kData) {
        Chunk* c = alloc_chunk();  // make_room() guaranteed it
        ++f.chunks;
        if (f.tail) f.tail->next = c; else f.head = c;
        f.tail = c;
        f.tail_off = 0;
      }
      size_t k = std::min(n, Chunk::kData - f.tail_off);
      std::memcpy(f.tail->data + f.tail_off, src, k);
      f.tail_off += k;
      src += k;
      n -= k;
    }
  };
  write(reinterpret_cast<const uint8_t*>(&h), sizeof h);
  write(frame.data(), frame.size());
  ++f.tail_seq;
  ++st_.packets_held;
  return true;
}

// Frees enough pool chunks for `slot` by releasing the oldest other flows (overflow).
bool HoldBack::make_room(uint32_t slot, size_t chunks_needed) {
  while (chunks_used_ + chunks_needed > chunks_max_) {
    if (!evict_oldest_flow(slot)) return false;  // nothing else to evict
  }
  return true;
}

bool HoldBack::evict_oldest_flow(uint32_t except_slot) {
  // expiries_ is in start order, so the first live entry is the oldest held session.
  while (!expiries_.empty()) {
    const Expiry& e = expiries_.front();
    const Flow& f = flows_[e.slot];
    bool live = f.in_use && f.n_sessions > 0 && f.sessions[0].id == e.session_id;
    if (live) break;
    bool waiting = false;  // a non-front session: keep its entry
    if (f.in_use)
      for (size_t i = 0; i < f.n_sessions; ++i) waiting |= f.sessions[i].id == e.session_id;
    if (waiting) break;
    expiries_.pop_front();
  }
  for (const Expiry& e : expiries_) {
    const Flow& f = flows_[e.slot];
    if (e.slot == except_slot || !f.in_use) continue;
    for (size_t i = 0; i < f.n_sessions; ++i) {
      if (f.sessions[i].id == e.session_id) {
        release_all_sessions(e.slot, st_.released_overflow);
        return true;
      }
    }
  }
  return false;
}

void HoldBack::emit_until(uint32_t slot, uint64_t end_seq) {
  Flow& f = flows_[slot];
  auto advance_head = [&] {
    if (f.head_off == Chunk::kData) {
      Chunk* c = f.head;
      f.head = c->next;
      if (f.tail == c) f.tail = nullptr;
      f.head_off = 0;
      free_chunk(c);
      --f.chunks;
    }
  };
  auto read = [&](uint8_t* dst, size_t n) {
    while (n > 0) {
      size_t k = std::min(n, Chunk::kData - f.head_off);
      std::memcpy(dst, f.head->data + f.head_off, k);
      f.head_off += k;
      dst += k;
      n -= k;
      advance_head();
    }
  };
  while (f.head_seq < end_seq && f.head_seq < f.tail_seq) {
    RecordHeader h;
    read(reinterpret_cast<uint8_t*>(&h), sizeof h);
    std::span<const uint8_t> frame;
    if (h.frame_len <= Chunk::kData - f.head_off) {
      // Contiguous: hand the sink a view into the chunk, free it only afterwards.
      frame = {f.head ? f.head->data + f.head_off : nullptr, h.frame_len};
      emit(h.meta, frame);
      if (h.frame_len) {
        f.head_off += h.frame_len;
        advance_head();
      }
    } else {
      if (scratch_.size() < h.frame_len) scratch_.resize(h.frame_len);
      read(scratch_.data(), h.frame_len);
      emit(h.meta, {scratch_.data(), h.frame_len});
    }
    ++f.head_seq;
  }
  if (f.head_seq == f.tail_seq && f.head) {
    // Everything emitted: give the partly used chunk back too.
    free_chunk(f.head);
    --f.chunks;
    f.head = f.tail = nullptr;
    f.head_off = f.tail_off = 0;
  }
}

void HoldBack::release_front(uint32_t slot, uint64_t& counter) {
  Flow& f = flows_[slot];
  if (!f.in_use || f.n_sessions == 0) return;
  Session s = f.sessions[0];
  uint64_t end = f.n_sessions > 1 ? f.sessions[1].start_seq : f.tail_seq;
  for (size_t i = 1; i < f.n_sessions; ++i) f.sessions[i - 1] = f.sessions[i];
  --f.n_sessions;
  if (s.random_known) {
    auto it = by_random_.find(s.random);
    if (it != by_random_.end() && it->second == slot) by_random_.erase(it);
    // Keys written, or given up: a retransmitted ClientHello of it must not be held again.
    remember_random(s.random, now_ns_);
  }
  ++counter;
  emit_until(slot, end);
  if (f.n_sessions == 0) {
    drop_flow(slot);
    return;
  }
  release_resolved(slot);
}

void HoldBack::release_resolved(uint32_t slot) {
  while (flows_[slot].in_use && flows_[slot].n_sessions > 0 && flows_[slot].sessions[0].keyed)
    release_front(slot, st_.released_keyed);
}

void HoldBack::release_all_sessions(uint32_t slot, uint64_t& counter) {
  while (flows_[slot].in_use && flows_[slot].n_sessions > 0) release_front(slot, counter);
}

void HoldBack::drop_flow(uint32_t slot) {
  Flow& f = flows_[slot];
  emit_until(slot, f.tail_seq);  // no-op unless called with records left
  remember_flow(f.key, now_ns_);
  by_key_.erase(f.key);
  f.in_use = false;
  f.n_sessions = 0;
  free_slots_.push_back(slot);
  --st_.flows_held_now;
}

void HoldBack::expire(uint64_t now_ns) {
  while (!expiries_.empty() && expiries_.front().deadline_ns <= now_ns) {
    Expiry e = expiries_.front();
    expiries_.pop_front();
    const Flow& f = flows_[e.slot];
    if (f.in_use && f.n_sessions > 0 && f.sessions[0].id == e.session_id)
      release_front(e.slot, st_.released_timeout);
  }
  while (!known_randoms_fifo_.empty() && known_randoms_fifo_.front().second <= now_ns) {
    auto& [r, u] = known_randoms_fifo_.front();
    auto it = known_randoms_.find(r);
    if (it != known_randoms_.end() && it->second.until_ns == u) known_randoms_.erase(it);
    known_randoms_fifo_.pop_front();
  }
  while (!known_flows_fifo_.empty() && known_flows_fifo_.front().second <= now_ns) {
    auto& [k, u] = known_flows_fifo_.front();
    auto it = known_flows_.find(k);
    if (it != known_flows_.end() && it->second.until_ns == u) known_flows_.erase(it);
    known_flows_fifo_.pop_front();
  }
}

// ---- public entry points -----------------------------------------------------------------

void HoldBack::on_packet(const PacketMeta& meta, std::span<const uint8_t> frame) {
  if (meta.ts_ns > now_ns_) now_ns_ = meta.ts_ns;
  if (!expiries_.empty() && expiries_.front().deadline_ns <= now_ns_) expire(now_ns_);

  ehp::net::FrameInfo fi;
  if (!ehp::net::decode_frame(meta.linktype, frame, fi) || fi.l4_proto != kIpprotoTcp ||
      fi.is_fragment) {
    ++st_.packets_passed;
    emit(meta, frame);
    return;
  }
  std::span<const uint8_t> payload;
  if (fi.l4_payload_offset <= frame.size())
    payload = frame.subspan(fi.l4_payload_offset,
                            std::min<size_t>(fi.l4_payload_len, frame.size() - fi.l4_payload_offset));
  ehp::net::TlsHello hello;
  if (!payload.empty()) hello = ehp::net::classify_tls(payload);
  if (observer_) observer_->on_segment(meta, fi, payload, hello);
  // Most packets (no flow held, not a hello) need no key: skip building it.
  const bool hello_pkt = hello.type == ehp::net::TlsHandshake::ClientHello ||
                         hello.type == ehp::net::TlsHandshake::ServerHello;
  if (by_key_.empty() && !hello_pkt) {
    ++st_.packets_passed;
    emit(meta, frame);
    return;
  }
  const ehp::net::FlowKey key = ehp::net::flow_key(fi);

  uint32_t slot = UINT32_MAX;
  if (!by_key_.empty()) {
    auto it = by_key_.find(key);
    if (it != by_key_.end()) slot = it->second;
  }

  if (slot != UINT32_MAX) {
    // A held flow: every packet joins the queue, in order.
    if (hello.type == ehp::net::TlsHandshake::ClientHello) {
      Flow& f = flows_[slot];
      bool seen = false;
      for (size_t i = 0; i < f.n_sessions; ++i)
        seen |= f.sessions[i].random_known && f.sessions[i].random == hello.random;
      if (!seen) {
        Session& last = f.sessions[f.n_sessions - 1];
        if (!last.random_known) {
          // The session was started by a ServerHello captured before its ClientHello.
          last.random_known = true;
          last.random = hello.random;
          if (is_remembered(hello.random, now_ns_)) last.keyed = true;
          else by_random_.emplace(hello.random, slot);
        } else {
          slot = add_session(slot, true, hello.random, now_ns_);  // 5-tuple reused: new session
        }
      }
    }
    if (!append(slot, meta, frame)) {
      release_all_sessions(slot, st_.released_overflow);
      ++st_.packets_passed;
      emit(meta, frame);
      return;
    }
    release_resolved(slot);  // a ClientHello whose keys were already known
    return;
  }

  bool hold = false;
  bool random_known = false;
  if (hello.type == ehp::net::TlsHandshake::ClientHello) {
    if (is_remembered(hello.random, now_ns_)) {
      ++st_.hello_known_keys;  // its DSB is already in the file
      remember_flow(key, now_ns_);
    } else if (passed_randoms_.count(hello.random)) {
      // Already found unkeyable (a retransmission, or the same hello seen on a second
      // interface of a router): same answer, not asked or counted again.
    } else {
      hold = true;
      random_known = true;
    }
  } else if (hello.type == ehp::net::TlsHandshake::ServerHello) {
    // Out-of-order capture (the ClientHello may still come), unless this flow just finished.
    hold = !is_remembered_flow(key, now_ns_);
  }
  if (hold && policy_ && !policy_->keyable(meta, fi)) {
    // No key can come (forwarded traffic, an untraced stack): straight to the file, in time
    // order. Its ServerHello must not start a hold either.
    hold = false;
    ++st_.not_keyable;
    if (random_known) remember_passed(hello.random, now_ns_);
    remember_flow(key, now_ns_);
    if (observer_ && random_known) observer_->on_not_keyable(fi, hello);
  }
  if (!hold) {
    ++st_.packets_passed;
    emit(meta, frame);
    return;
  }
  slot = start_flow(key, meta.ts_ns);
  slot = add_session(slot, random_known, hello.random, now_ns_);
  if (!append(slot, meta, frame)) {
    release_all_sessions(slot, st_.released_overflow);
    ++st_.packets_passed;
    emit(meta, frame);
  }
}

void HoldBack::on_keys(const std::array<uint8_t, 32>& client_random, std::string_view keylog_lines) {
  // Written now in every case: either right before the held ClientHello (released below), or
  // before a ClientHello that has not been captured yet.
  sink_.secrets(keylog_lines);
  ++st_.dsb_written;
  auto it = by_random_.find(client_random);
  if (it == by_random_.end()) {
    auto p = passed_randoms_.find(client_random);
    if (p != passed_randoms_.end()) {
      ++st_.keyed_not_held;  // its ClientHello is already in the file, before this DSB
      passed_randoms_.erase(p);
    } else {
      ++st_.keys_without_flow;
    }
    remember_random(client_random, now_ns_);
    return;
  }
  uint32_t slot = it->second;
  by_random_.erase(it);
  Flow& f = flows_[slot];
  for (size_t i = 0; i < f.n_sessions; ++i)
    if (f.sessions[i].random_known && f.sessions[i].random == client_random) f.sessions[i].keyed = true;
  release_resolved(slot);
}

void HoldBack::tick(uint64_t now_ns) {
  if (now_ns > now_ns_) now_ns_ = now_ns;
  expire(now_ns_);
}

void HoldBack::flush_all() {
  while (!expiries_.empty()) {
    Expiry e = expiries_.front();
    expiries_.pop_front();
    if (flows_[e.slot].in_use) release_all_sessions(e.slot, st_.released_timeout);
  }
  for (uint32_t slot = 0; slot < flows_.size(); ++slot)
    if (flows_[slot].in_use) release_all_sessions(slot, st_.released_timeout);
}

HoldBackStats HoldBack::stats() const {
  HoldBackStats s = st_;
  s.bytes_held_now = chunks_used_ * kChunkBytes;
  return s;
}

}  // namespace ehp::correlate
