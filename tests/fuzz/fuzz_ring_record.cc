// SPDX-License-Identifier: BSD-2-Clause
// libFuzzer target: decoding of the capture ring (bpf/abi/capture_abi.h) down to TLS hellos.
//
// Drives the engine's own ring decoding, engine/capture/record.h (ring_step: the consumer
// walk of Capture::Impl::drain; decode_record: what the merge reads from each record), and the
// real downstream parsers (ehp::net::decode_frame, classify_tls) with the frames it yields,
// exactly as the engine does.
//
// Input: byte 0 bit 0 = linktype of the interface (0 Ethernet, 1 RAW); the rest is a span of
// ring data: [u32 len | BUSY/DISCARD bits][u32 pg_off][payload, padded to 8] ...
// Properties: the walk always advances and ends; every frame lies inside its record and is
// cap_len = min(hdr.cap_len, payload - sizeof hdr) bytes; comm is NUL-terminated; direction is
// 0/1 or counted as invalid; decode_frame/classify_tls never read outside the frame (each frame
// is copied to an exact-size allocation).
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "abi/capture_abi.h"
#include "capture/record.h"
#include "net/frame.h"
#include "fuzz_util.h"

namespace ref = ehp::capture::record;

namespace {
using ehp::fuzz::fail;
constexpr const char* kT = "fuzz_ring_record";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint16_t linktype = (data[0] & 1) ? ehp::net::kLinktypeRaw : ehp::net::kLinktypeEthernet;
  const std::span<const uint8_t> ring(data + 1, size - 1);

  uint64_t pos = 0, records = 0, bad_direction = 0;
  while (pos + ref::kRingHdrBytes <= ring.size()) {
    uint32_t len_word;
    std::memcpy(&len_word, ring.data() + pos, sizeof(len_word));
    const ref::Step st = ref::ring_step(len_word);
    if (st.kind == ref::Step::Busy) break;  // uncommitted: the consumer stops to keep order
    if (st.advance_bytes < ref::kRingHdrBytes || st.advance_bytes % 8) fail(kT, "walk does not advance by 8k");
    // A record that runs past the data is what a producer position behind the header would
    // mean; the kernel never publishes that, so the walk ends there.
    if (pos + ref::kRingHdrBytes + st.payload_bytes > ring.size()) break;
    if (st.kind == ref::Step::Record) {
      const auto rec = ref::decode_record(ring.subspan(pos + ref::kRingHdrBytes, st.payload_bytes));
      if (!rec) fail(kT, "Record step but decode_record refused");
      const uint8_t* rec_begin = ring.data() + pos + ref::kRingHdrBytes;
      if (rec->frame.data() != rec_begin + sizeof(ehp_capture_hdr)) fail(kT, "frame does not follow the header");
      if (rec->frame.size() > st.payload_bytes - sizeof(ehp_capture_hdr)) fail(kT, "frame runs past its record");
      if (rec->frame.size() > rec->hdr.cap_len) fail(kT, "frame longer than cap_len");
      if (rec->hdr.proc.comm[EHP_COMM_LEN - 1] != '\0') fail(kT, "comm not terminated");
      if (rec->hdr.direction != EHP_DIR_INGRESS && rec->hdr.direction != EHP_DIR_EGRESS) ++bad_direction;
      const std::vector<uint8_t> frame(rec->frame.begin(), rec->frame.end());
      ehp::net::FrameInfo fi;
      if (ehp::net::decode_frame(linktype, frame, fi)) {
        if (uint64_t{fi.l4_payload_offset} + fi.l4_payload_len > frame.size()) fail(kT, "L4 payload past the frame");
        const std::vector<uint8_t> payload(frame.begin() + fi.l4_payload_offset,
                                           frame.begin() + fi.l4_payload_offset + fi.l4_payload_len);
        (void)ehp::net::classify_tls(payload);
      }
      ++records;
    }
    pos += st.advance_bytes;
  }
  (void)records;
  (void)bad_direction;
  return 0;
}
