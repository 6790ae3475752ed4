// SPDX-License-Identifier: BSD-2-Clause
// pcapng_reencode: reads a capture with libpcap (pcap or pcapng, e.g. dumpcap's output) and
// re-encodes every packet with ehp::pcapng into a new pcapng, adding one DSB with a key log.
//
//   pcapng_reencode IN KEYLOG OUT before|after|none
//     before  DSB right before the first TLS ClientHello (what the writer must do)
//     after   DSB after the last packet (documents that tshark then decrypts nothing)
//     none    no DSB
//
// Prints "packets=N clienthello=I" (I = 1-based index of the first ClientHello, 0 if none) and
// exits non-zero, with a message, on any error.
#include "output/pcapng.h"

#include <pcap/pcap.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace ehp::pcapng;

// Offset of the TCP payload in a frame of `linktype`, or -1 if the frame is not TCP over IP.
long tcp_payload_offset(int linktype, const uint8_t* p, size_t n, uint16_t* sport) {
  size_t off = 0;
  if (linktype == DLT_EN10MB) {
    if (n < 14) return -1;
    const uint16_t ethertype = static_cast<uint16_t>(p[12] << 8 | p[13]);
    if (ethertype != 0x0800 && ethertype != 0x86dd) return -1;
    off = 14;
  } else if (linktype != DLT_RAW && linktype != 101 /* LINKTYPE_RAW */) {
    return -1;
  }
  if (n < off + 1) return -1;
  uint8_t proto;
  const int version = p[off] >> 4;
  if (version == 4) {
    if (n < off + 20) return -1;
    proto = p[off + 9];
    off += (p[off] & 0x0f) * 4u;
  } else if (version == 6) {
    if (n < off + 40) return -1;
    proto = p[off + 6];  // no extension headers on loopback TCP
    off += 40;
  } else {
    return -1;
  }
  if (proto != 6 || n < off + 20) return -1;
  *sport = static_cast<uint16_t>(p[off] << 8 | p[off + 1]);
  off += (p[off + 12] >> 4) * 4u;
  return off <= n ? static_cast<long>(off) : -1;
}

// TLS record header: type 22 (handshake), then handshake type 1 (ClientHello).
bool is_client_hello(int linktype, const uint8_t* p, size_t n, uint16_t* client_port) {
  uint16_t sport = 0;
  const long off = tcp_payload_offset(linktype, p, n, &sport);
  if (off < 0 || n < static_cast<size_t>(off) + 6) return false;
  const uint8_t* t = p + off;
  if (t[0] == 0x16 && t[1] == 0x03 && t[5] == 0x01) {
    *client_port = sport;
    return true;
  }
  return false;
}

class Out {
 public:
  template <typename Fn>
  bool add(size_t size, Fn encode) {
    const size_t at = buf_.size();
    buf_.resize(at + size);
    return encode(std::span<uint8_t>(buf_.data() + at, size)) == size;
  }
  const std::vector<uint8_t>& bytes() const { return buf_; }

 private:
  std::vector<uint8_t> buf_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s IN KEYLOG OUT before|after|none\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[4];
  if (mode != "before" && mode != "after" && mode != "none") {
    std::fprintf(stderr, "bad mode '%s'\n", mode.c_str());
    return 2;
  }
  std::ifstream kf(argv[2], std::ios::binary);
  if (!kf) {
    std::fprintf(stderr, "cannot read key log %s\n", argv[2]);
    return 1;
  }
  std::stringstream ks;
  ks << kf.rdbuf();
  const std::string keylog = ks.str();

  char err[PCAP_ERRBUF_SIZE];
  pcap_t* in = pcap_open_offline_with_tstamp_precision(argv[1], PCAP_TSTAMP_PRECISION_NANO, err);
  if (!in) {
    std::fprintf(stderr, "pcap_open_offline %s: %s\n", argv[1], err);
    return 1;
  }
  const int linktype = pcap_datalink(in);

  Out out;
  const ShbInfo shb{.hardware = "test", .os = "Linux", .userappl = "pcapng_reencode (ecapture-hp tests)"};
  const IdbInfo idb{.linktype = static_cast<uint16_t>(linktype), .name = "lo", .description = "re-encoded"};
  bool ok = out.add(shb_size(shb), [&](auto o) { return encode_shb(o, shb); }) &&
            out.add(idb_size(idb), [&](auto o) { return encode_idb(o, idb); });

  pcap_pkthdr* h;
  const u_char* data;
  uint64_t packets = 0, hello_index = 0, first_ts_ns = 0, last_ts_ns = 0;
  uint16_t client_port = 0;
  int rc;
  while (ok && (rc = pcap_next_ex(in, &h, &data)) == 1) {
    ++packets;
    // With nano precision, tv_usec holds nanoseconds.
    const uint64_t ts_ns = static_cast<uint64_t>(h->ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(h->ts.tv_usec);
    if (packets == 1) first_ts_ns = ts_ns;
    last_ts_ns = ts_ns;
    uint16_t port = 0;
    if (!hello_index && is_client_hello(linktype, data, h->caplen, &port)) {
      hello_index = packets;
      client_port = port;
      if (mode == "before") ok = out.add(dsb_size(keylog), [&](auto o) { return encode_dsb(o, keylog); });
    }
    uint16_t sport = 0;
    const bool from_client = client_port && tcp_payload_offset(linktype, data, h->caplen, &sport) >= 0 &&
                             sport == client_port;
    EpbInfo epb{.ts_ns = ts_ns, .caplen = h->caplen, .origlen = h->len,
                .flags = client_port ? (from_client ? kFlagOutbound : kFlagInbound) : 0u,
                .has_packetid = true, .packetid = packets};
    ok = ok && out.add(epb_size(epb), [&](auto o) {
      return encode_epb(o, epb, std::span<const uint8_t>(data, h->caplen));
    });
  }
  if (ok && rc != PCAP_ERROR_BREAK) {
    std::fprintf(stderr, "reading %s: %s\n", argv[1], pcap_geterr(in));
    ok = false;
  }
  pcap_close(in);
  if (ok && mode == "after") ok = out.add(dsb_size(keylog), [&](auto o) { return encode_dsb(o, keylog); });
  const IsbInfo isb{.ts_ns = last_ts_ns, .starttime_ns = first_ts_ns, .endtime_ns = last_ts_ns,
                    .ifrecv = packets, .usrdeliv = packets};
  ok = ok && out.add(isb_size(isb), [&](auto o) { return encode_isb(o, isb); });
  if (!ok) {
    std::fprintf(stderr, "encoding failed\n");
    return 1;
  }
  // Our own reader must accept all of it.
  const PrefixResult pr = scan_prefix(out.bytes());
  if (pr.len_bytes != out.bytes().size()) {
    std::fprintf(stderr, "complete_prefix stopped at %zu of %zu: %s\n", pr.len_bytes, out.bytes().size(),
                 pr.stop_reason);
    return 1;
  }
  std::ofstream of(argv[3], std::ios::binary | std::ios::trunc);
  of.write(reinterpret_cast<const char*>(out.bytes().data()), static_cast<std::streamsize>(out.bytes().size()));
  if (!of) {
    std::fprintf(stderr, "cannot write %s\n", argv[3]);
    return 1;
  }
  std::printf("packets=%llu clienthello=%llu\n", static_cast<unsigned long long>(packets),
              static_cast<unsigned long long>(hello_index));
  return 0;
}
