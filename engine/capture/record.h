// SPDX-License-Identifier: BSD-2-Clause
// Decoding of the capture ring (layouts: bpf/abi/capture_abi.h), as pure functions: the
// consumer walk (engine/capture/capture.cc, Capture::Impl::drain) steps with ring_step() and
// the merge (fill_ref) reads each record with decode_record(). tests/fuzz/fuzz_ring_record.cc
// fuzzes these same functions.
//
// A BPF ringbuf record is [u32 len | BUSY/DISCARD bits][u32 page offset][payload, padded to 8];
// our payload is an ehp_capture_hdr followed by the frame bytes (the record's size class may
// leave unused bytes after the frame: the frame length is the header's cap_len, clamped to the
// record).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include "abi/capture_abi.h"

namespace ehp::capture::record {

constexpr uint32_t kRingHdrBytes = 8;       // BPF_RINGBUF_HDR_SZ
constexpr uint32_t kBusyBit = 1u << 31;     // BPF_RINGBUF_BUSY_BIT
constexpr uint32_t kDiscardBit = 1u << 30;  // BPF_RINGBUF_DISCARD_BIT

// One step of the consumer walk, from a record's first u32 (read with acquire semantics).
struct Step {
  enum Kind { Busy, Discarded, TooShort, Record } kind;
  uint32_t payload_bytes;  // bytes after the 8-byte ringbuf header
  uint64_t advance_bytes;  // to the next record (header included, rounded up to 8); 0 if Busy
};

// Ring bytes a record with `payload` bytes takes: header included, rounded up to 8.
inline uint64_t record_bytes(uint32_t payload) {
  return (uint64_t{payload} + kRingHdrBytes + 7) & ~uint64_t{7};
}

inline Step ring_step(uint32_t len_word) {
  const uint32_t payload = len_word & ~(kBusyBit | kDiscardBit);
  const uint64_t adv = record_bytes(payload);
  if (len_word & kBusyBit) return {Step::Busy, payload, 0};  // reserved, not committed yet
  if (len_word & kDiscardBit) return {Step::Discarded, payload, adv};
  if (payload < sizeof(ehp_capture_hdr)) return {Step::TooShort, payload, adv};
  return {Step::Record, payload, adv};
}

struct View {
  ehp_capture_hdr hdr;             // copied out (ring memory is not aligned for it)
  std::span<const uint8_t> frame;  // right after the header: min(hdr.cap_len, payload - hdr) bytes
};

// `payload`: a record's bytes after the ringbuf header. nullopt if too short for a header.
// comm comes out NUL-terminated whatever the record held.
inline std::optional<View> decode_record(std::span<const uint8_t> payload) {
  if (payload.size() < sizeof(ehp_capture_hdr)) return std::nullopt;
  View v;
  std::memcpy(&v.hdr, payload.data(), sizeof(v.hdr));
  const size_t room = payload.size() - sizeof(ehp_capture_hdr);
  const size_t cap = v.hdr.cap_len < room ? v.hdr.cap_len : room;
  v.frame = payload.subspan(sizeof(ehp_capture_hdr), cap);
  v.hdr.proc.comm[EHP_COMM_LEN - 1] = '\0';
  return v;
}

}  // namespace ehp::capture::record
