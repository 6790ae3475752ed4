// SPDX-License-Identifier: BSD-2-Clause
// libFuzzer target: frame decoder and TLS hello recognition (engine/net/frame.h).
//
// Input: byte 0 bit 0 picks the linktype (0 Ethernet, 1 RAW), the rest is the captured frame.
// Properties (beyond "no out-of-bounds read", which ASan checks: every span handed to the code
// under test is its own heap allocation of exactly that size):
//   - decode_frame: ip_version is 4 or 6 on success; the L4 payload lies inside the frame;
//   - flow_key is direction-independent: swapping source and destination (addresses and ports)
//     gives the same key and the same hash;
//   - classify_tls on the TCP payload (and on the raw bytes): a hello is reported only for a
//     handshake record (type 22, version 3.x) whose message type is 1/2, and `random` is the
//     32 bytes at offset 11 (5 record header + 4 handshake header + 2 legacy_version) of that
//     record, which may follow one leading ChangeCipherSpec record (RFC 8446 D.4).
#include <netinet/in.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "net/frame.h"
#include "fuzz_util.h"

namespace {

using ehp::fuzz::fail;
using namespace ehp::net;

void check_tls(const uint8_t* p, size_t n) {
  const std::vector<uint8_t> payload(p, p + n);  // exact-size copy: overreads hit the redzone
  const TlsHello h = classify_tls(payload);
  if (h.type == TlsHandshake::None) return;
  // One leading ChangeCipherSpec record (14 03 0x 00 01 01, TLS 1.3 middlebox compatibility
  // after a HelloRetryRequest) may precede the hello: it then starts at offset 6.
  const size_t base = (n >= 6 && payload[0] == 20 && payload[1] == 3 && payload[3] == 0 && payload[4] == 1 &&
                       payload[5] == 1)
                          ? 6
                          : 0;
  if (n < base + 43) fail("fuzz_frame", "hello reported for a payload shorter than 43 bytes");
  if (payload[base] != 22 || payload[base + 1] != 3) fail("fuzz_frame", "hello reported for a non-handshake record");
  const uint8_t want = h.type == TlsHandshake::ClientHello ? 1 : 2;
  if (payload[base + 5] != want) fail("fuzz_frame", "hello type does not match handshake msg_type");
  if (std::memcmp(h.random.data(), payload.data() + base + 11, 32) != 0)
    fail("fuzz_frame", "random is not the 32 bytes at offset 11 of the handshake record");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint16_t linktype = (data[0] & 1) ? kLinktypeRaw : kLinktypeEthernet;
  const std::vector<uint8_t> frame(data + 1, data + size);

  FrameInfo fi;
  if (decode_frame(linktype, frame, fi)) {
    if (fi.ip_version != 4 && fi.ip_version != 6) fail("fuzz_frame", "decoded with ip_version not 4/6");
    if (uint64_t{fi.l4_payload_offset} + fi.l4_payload_len > frame.size())
      fail("fuzz_frame", "L4 payload extends past the frame");
    if (fi.ip_version == 4) {
      for (size_t i = 4; i < 16; ++i)
        if (fi.src[i] || fi.dst[i]) fail("fuzz_frame", "IPv4 address has bytes past 4");
    }
    FrameInfo rev = fi;
    std::swap(rev.src, rev.dst);
    std::swap(rev.sport, rev.dport);
    const FlowKey k1 = flow_key(fi), k2 = flow_key(rev);
    if (!(k1 == k2)) fail("fuzz_frame", "flow_key depends on direction");
    if (FlowKeyHash{}(k1) != FlowKeyHash{}(k2)) fail("fuzz_frame", "flow hash depends on direction");
    if (fi.l4_proto == IPPROTO_TCP && !fi.is_fragment)
      check_tls(frame.data() + fi.l4_payload_offset, fi.l4_payload_len);
  }
  check_tls(frame.data(), frame.size());
  return 0;
}
