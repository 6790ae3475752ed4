// SPDX-License-Identifier: BSD-2-Clause
#include "tls/assembler.h"

#include <cstring>

namespace ehp::tls {
namespace {

// Bit order of Pending::have.
constexpr std::string_view kLabels[] = {
    "CLIENT_RANDOM",                    // 0: TLS 1.2 (and earlier): complete by itself
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",  // 1
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",  // 2
    "CLIENT_TRAFFIC_SECRET_0",          // 3
    "SERVER_TRAFFIC_SECRET_0",          // 4
};
constexpr std::string_view kExporter = "EXPORTER_SECRET";
constexpr unsigned kTls13Complete = 0b11110;

std::string line(std::string_view label, const std::array<uint8_t, 32>& cr, std::span<const uint8_t> secret) {
  static const char* kHex = "0123456789abcdef";
  std::string out(label);
  out.reserve(label.size() + 2 + 64 + 2 * secret.size() + 1);
  out.push_back(' ');
  for (uint8_t b : cr) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  out.push_back(' ');
  for (uint8_t b : secret) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  out.push_back('\n');
  return out;
}

bool all_zero(std::span<const uint8_t> s) {
  for (uint8_t b : s)
    if (b) return false;
  return true;
}

}  // namespace

// Pops the oldest arrival entry; true when it still named a waiting session, now dropped (an
// entry of a session that completed since is just discarded).
bool KeylogAssembler::drop_oldest() {
  const auto old = order_.front();
  order_.pop_front();
  auto o = pending_.find(old.first);
  if (o == pending_.end() || o->second.first_ns != old.second) return false;
  pending_.erase(o);
  dropped_++;
  return true;
}

size_t KeylogAssembler::Hash::operator()(const std::array<uint8_t, 32>& r) const noexcept {
  uint64_t h;
  std::memcpy(&h, r.data(), sizeof h);  // random bytes: any 8 of them hash well
  return size_t(h);
}

std::optional<Secrets> KeylogAssembler::add(std::string_view label, const std::array<uint8_t, 32>& cr,
                                            std::span<const uint8_t> secret, uint64_t now_ns) {
  int idx = -1;
  for (int i = 0; i < 5; ++i)
    if (label == kLabels[i]) idx = i;
  const bool exporter = label == kExporter;
  if ((idx < 0 && !exporter) || secret.empty() || all_zero(secret) || all_zero(cr)) {
    ignored_++;
    return std::nullopt;
  }
  if (idx == 0) {  // TLS 1.2: one line is the whole session
    Secrets s;
    s.client_random = cr;
    s.version = kTls12;
    s.logged = line(label, cr, secret);
    return s;
  }
  auto it = pending_.find(cr);
  if (it == pending_.end()) {
    if (exporter) {  // after its session completed (or alone): nothing to add it to
      ignored_++;
      return std::nullopt;
    }
    // Full: the oldest waiting session gives way.
    if (pending_.size() >= capacity_)
      while (!order_.empty() && !drop_oldest()) {
      }
    it = pending_.emplace(cr, Pending{}).first;
    it->second.first_ns = now_ns;
    order_.emplace_back(cr, now_ns);
    if (order_.size() > 4 * capacity_ + 64) {
      // Completed sessions leave their arrival entries behind: rebuild from what still waits.
      std::deque<std::pair<std::array<uint8_t, 32>, uint64_t>> live;
      for (auto& e : order_)
        if (auto o = pending_.find(e.first); o != pending_.end() && o->second.first_ns == e.second) live.push_back(e);
      order_.swap(live);
    }
  }
  Pending& p = it->second;
  if (exporter) {
    p.lines[0] = line(label, cr, secret);  // slot 0 is free in a TLS 1.3 session
    if (p.complete_ns) {
      Secrets done = finish(cr, p);
      pending_.erase(it);
      return done;
    }
    return std::nullopt;
  }
  p.have |= 1u << idx;
  p.lines[idx] = line(label, cr, secret);
  if ((p.have & kTls13Complete) != kTls13Complete || p.complete_ns) return std::nullopt;
  if (p.lines[0].empty()) {  // the exporter secret may follow at once: wait a moment (flush())
    p.complete_ns = now_ns ? now_ns : 1;
    return std::nullopt;
  }
  Secrets done = finish(cr, p);
  pending_.erase(it);
  return done;
}

Secrets KeylogAssembler::finish(const std::array<uint8_t, 32>& cr, Pending& p) {
  Secrets s;
  s.client_random = cr;
  s.version = kTls13;
  for (int i = 1; i < 5; ++i) s.logged += p.lines[i];
  s.logged += p.lines[0];  // the exporter secret, when there is one
  return s;
}

void KeylogAssembler::flush(uint64_t now_ns, std::vector<Secrets>* out) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.complete_ns && now_ns - it->second.complete_ns >= exporter_wait_ns_) {
      out->push_back(finish(it->first, it->second));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

size_t KeylogAssembler::expire(uint64_t now_ns) {
  size_t n = 0;
  while (!order_.empty() && now_ns - order_.front().second > max_age_ns_) n += drop_oldest();
  return n;
}

}  // namespace ehp::tls
