// SPDX-License-Identifier: BSD-2-Clause
// A reader of pcap and pcapng files for `ecapture-hp replay`, written for hostile input: every
// length is checked against the block that holds it and against fixed caps, nothing is trusted.
// Unlike libpcap it hands over the pcapng Decryption Secrets Blocks (the TLS keys), keeps
// timestamps past 2038 (pcap's seconds are unsigned), and tells a cut last record (a capture
// stopped mid-write) apart from a damaged file: the records before it are read, truncated_at()
// says where the cut is.
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ehp::pipeline {

struct CaptureFileInterface {
  uint16_t linktype = 1;
  std::string name;  // if_name, "" when the file gives none (pcap)
};

struct CaptureRecord {
  enum class Kind { Packet, TlsKeyLog };
  Kind kind = Kind::Packet;
  uint32_t interface_id = 0;  // index into interfaces() (all sections together)
  uint64_t ts_ns = 0;         // Unix time in ns
  uint32_t wire_len = 0;
  std::span<const uint8_t> data;  // frame, or NSS key log text; valid until the next call
};

class CaptureFileReader {
 public:
  static constexpr uint32_t kMaxBlockBytes = 16u << 20;  // a block or record larger than this: refused
  static std::unique_ptr<CaptureFileReader> open(const std::string& path, std::string* err);
  ~CaptureFileReader();

  // 1: *rec filled; 0: end of the file (or of its readable part: see truncated_at());
  // -1: the file is damaged (*err, one line with the byte offset).
  int next(CaptureRecord* rec, std::string* err);
  const std::vector<CaptureFileInterface>& interfaces() const { return ifaces_; }
  bool pcapng() const { return pcapng_; }
  // The byte offset of a last record cut short by the end of the file; -1 when there is none.
  int64_t truncated_at() const { return truncated_at_; }

 private:
  CaptureFileReader() = default;
  // Reads exactly n bytes; false at the end of the file (*got = bytes read).
  bool read_exact(void* p, size_t n, size_t* got);
  int next_pcap(CaptureRecord* rec, std::string* err);
  int next_pcapng(CaptureRecord* rec, std::string* err);
  bool parse_idb(std::span<const uint8_t> body, std::string* err);
  uint32_t u32(const uint8_t* p) const;
  uint16_t u16(const uint8_t* p) const;

  FILE* f_ = nullptr;
  std::string path_;
  bool pcapng_ = false;
  std::string damaged_;  // set by the first -1 of next(), which then answers it again
  bool swapped_ = false;
  uint64_t off_ = 0;  // bytes consumed
  int64_t truncated_at_ = -1;
  // pcap
  bool nano_ = false;
  uint32_t snap_cap_ = kMaxBlockBytes;
  // pcapng: this section's interfaces, as indexes into ifaces_, and their time resolution
  struct SectionIf {
    uint32_t global_id;
    bool binary_res;  // 2^-res, else 10^-res
    uint8_t res;
    int64_t offset_s;
  };
  std::vector<SectionIf> section_;
  uint64_t last_ts_ns_ = 0;
  std::vector<CaptureFileInterface> ifaces_;
  std::vector<uint8_t> buf_;
};

}  // namespace ehp::pipeline
