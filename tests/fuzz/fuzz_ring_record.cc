// libFuzzer target: decoding of the capture ring (bpf/abi/capture_abi.h) down to TLS hellos.
//
// engine/capture/capture.cc decodes ring records inside Capture::Impl (the consumer walk in
// the per-CPU thread and fill_ref in the merge), which needs live rings; there is no pure
// function to call yet. Until there is, this target carries a reference decoder written from
// the ABI header alone (ring_step + decode_record below, the shape proposed to engineer p5 as
// engine/capture/record.h) and drives the real downstream parsers (ehp::net::decode_frame,
// classify_tls) with the frames it yields, exactly as the engine does.
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
#include "correlate/frame.h"
#include "fuzz_util.h"

namespace ehp::fuzz::ref {

constexpr uint32_t kRingHdrBytes = 8;       // BPF_RINGBUF_HDR_SZ
constexpr uint32_t kBusyBit = 1u << 31;     // BPF_RINGBUF_BUSY_BIT
constexpr uint32_t kDiscardBit = 1u << 30;  // BPF_RINGBUF_DISCARD_BIT

// One step of the consumer walk, from the record's first u32.
struct RingStep {
  enum Kind { Busy, Discarded, TooShort, Record } kind;
  uint32_t payload_bytes;   // bytes after the 8-byte ringbuf header
  uint64_t advance_bytes;   // to the next record (header included, rounded to 8)
};
RingStep ring_step(uint32_t len_word) {
  const uint32_t payload = len_word & ~(kBusyBit | kDiscardBit);
  const uint64_t adv = (uint64_t{payload} + kRingHdrBytes + 7) & ~uint64_t{7};
  if (len_word & kBusyBit) return {RingStep::Busy, payload, 0};
  if (len_word & kDiscardBit) return {RingStep::Discarded, payload, adv};
  if (payload < sizeof(ehp_capture_hdr)) return {RingStep::TooShort, payload, adv};
  return {RingStep::Record, payload, adv};
}

struct RecordView {
  ehp_capture_hdr hdr;             // copied out (ring memory is not aligned for it)
  std::span<const uint8_t> frame;  // inside the record: min(hdr.cap_len, payload - hdr) bytes
};
std::optional<RecordView> decode_record(std::span<const uint8_t> payload) {
  if (payload.size() < sizeof(ehp_capture_hdr)) return std::nullopt;
  RecordView v;
  std::memcpy(&v.hdr, payload.data(), sizeof(v.hdr));
  const size_t room = payload.size() - sizeof(ehp_capture_hdr);
  const size_t cap = v.hdr.cap_len < room ? v.hdr.cap_len : room;
  v.frame = payload.subspan(sizeof(ehp_capture_hdr), cap);
  v.hdr.proc.comm[EHP_COMM_LEN - 1] = '\0';
  return v;
}

}  // namespace ehp::fuzz::ref

namespace {
using ehp::fuzz::fail;
constexpr const char* kT = "fuzz_ring_record";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace ref = ehp::fuzz::ref;
  if (size < 1) return 0;
  const uint16_t linktype = (data[0] & 1) ? ehp::net::kLinktypeRaw : ehp::net::kLinktypeEthernet;
  const std::span<const uint8_t> ring(data + 1, size - 1);

  uint64_t pos = 0, records = 0, bad_direction = 0;
  while (pos + ref::kRingHdrBytes <= ring.size()) {
    uint32_t len_word;
    std::memcpy(&len_word, ring.data() + pos, sizeof(len_word));
    const ref::RingStep st = ref::ring_step(len_word);
    if (st.kind == ref::RingStep::Busy) break;  // uncommitted: the consumer stops to keep order
    if (st.advance_bytes < ref::kRingHdrBytes || st.advance_bytes % 8) fail(kT, "walk does not advance by 8k");
    // A record that runs past the data is what a producer position behind the header would
    // mean; the kernel never publishes that, so the walk ends there.
    if (pos + ref::kRingHdrBytes + st.payload_bytes > ring.size()) break;
    if (st.kind == ref::RingStep::Record) {
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
