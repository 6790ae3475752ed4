// SPDX-License-Identifier: BSD-2-Clause
// Files built with the encoders are read back by the real readers: tshark (Wireshark's wiretap)
// and tcpdump (libpcap). Both must read them without an error, and the fields tshark shows
// must be the values we encoded. Runs without privileges; tshark/tcpdump/capinfos come from PATH.
#include "output/pcapng.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace ehp::pcapng {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

struct CmdResult {
  int exit_code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs `cmd` through sh, stdout captured, stderr into a file next to the capture.
CmdResult run(const std::string& cmd, const fs::path& dir) {
  CmdResult r;
  const fs::path err = dir / "stderr.txt";
  FILE* p = popen((cmd + " 2>" + err.string()).c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = slurp(err);
  return r;
}


uint16_t ip_checksum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += (p[i] << 8) | p[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// IPv4/UDP datagram 10.0.0.1:src_port -> 10.0.0.2:50000 with `payload`.
std::vector<uint8_t> ipv4_udp(uint16_t src_port, std::string_view payload) {
  std::vector<uint8_t> p(28 + payload.size());
  const uint16_t total = static_cast<uint16_t>(p.size());
  const uint16_t udp_len = static_cast<uint16_t>(8 + payload.size());
  const uint8_t ip[20] = {0x45, 0, uint8_t(total >> 8), uint8_t(total), 0, 1, 0x40, 0, 64, 17, 0, 0,
                          10, 0, 0, 1, 10, 0, 0, 2};
  std::copy(ip, ip + 20, p.begin());
  const uint16_t c = ip_checksum(p.data(), 20);
  p[10] = uint8_t(c >> 8);
  p[11] = uint8_t(c);
  // Destination port 50000 has no dissector, so the payload shows as plain data.
  const uint8_t udp[8] = {uint8_t(src_port >> 8), uint8_t(src_port), 0xc3, 0x50, uint8_t(udp_len >> 8), uint8_t(udp_len), 0, 0};
  std::copy(udp, udp + 8, p.begin() + 20);
  std::copy(payload.begin(), payload.end(), p.begin() + 28);
  return p;
}

std::vector<uint8_t> ethernet(const std::vector<uint8_t>& ip) {
  static constexpr uint8_t kHeader[14] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00};
  std::vector<uint8_t> f(sizeof kHeader + ip.size());
  std::copy(std::begin(kHeader), std::end(kHeader), f.begin());
  std::copy(ip.begin(), ip.end(), f.begin() + sizeof kHeader);
  return f;
}

// stderr minus the lines that are not about the file: tshark's root warning and tcpdump's
// "reading from file F, link-type ..." banner.
std::string alarming(const std::string& err) {
  std::string out;
  for (const auto& l : lines(err)) {
    if (l.find("Running as user \"root\"") != std::string::npos) continue;
    if (l.rfind("reading from file ", 0) == 0) continue;
    out += l + "\n";
  }
  return out;
}

class Builder {
 public:
  template <typename Fn>
  void add(size_t size, Fn encode) {
    const size_t at = bytes_.size();
    bytes_.resize(at + size);
    ASSERT_EQ(encode(std::span<uint8_t>(bytes_.data() + at, size)), size);
  }
  void shb(const ShbInfo& i) { add(shb_size(i), [&](auto o) { return encode_shb(o, i); }); }
  void idb(const IdbInfo& i) { add(idb_size(i), [&](auto o) { return encode_idb(o, i); }); }
  void dsb(std::string_view k) { add(dsb_size(k), [&](auto o) { return encode_dsb(o, k); }); }
  void isb(const IsbInfo& i) { add(isb_size(i), [&](auto o) { return encode_isb(o, i); }); }
  void epb(EpbInfo i, const std::vector<uint8_t>& data) {
    i.caplen = i.origlen = static_cast<uint32_t>(data.size());
    add(epb_size(i), [&](auto o) { return encode_epb(o, i, data); });
  }
  void write(const fs::path& p) const {
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes_.data()), static_cast<std::streamsize>(bytes_.size()));
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

constexpr uint64_t kT0 = 1764151200'000000000ull;  // 2025-11-26 10:00:00 UTC, in ns
constexpr const char* kComment1 = "pid=1234 tid=1235 uid=0 comm=curl";
constexpr const char* kKeylog1 =
    "CLIENT_RANDOM 0101010101010101010101010101010101010101010101010101010101010101 "
    "020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202\n";
constexpr const char* kKeylog2 =
    "CLIENT_RANDOM 0303030303030303030303030303030303030303030303030303030303030303 "
    "040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404\n";

// SHB, IDB 0 (second_linktype... see below), IDB 1, DSB, 4 EPBs with every option, DSB, 2 ISBs.
Builder sample(uint16_t second_linktype) {
  Builder b;
  b.shb({.hardware = "x86_64 test", .os = "Linux 6.18", .userappl = "ecapture-hp pcapng test"});
  b.idb({.linktype = kLinktypeEthernet, .name = "p1veth0", .description = "test veth", .filter = "udp port 53"});
  b.idb({.linktype = second_linktype, .name = "p1tun0", .description = "test tun"});
  b.dsb(kKeylog1);
  auto second = [&](std::vector<uint8_t> ip) { return second_linktype == kLinktypeRaw ? ip : ethernet(ip); };
  b.epb({.interface_id = 0, .ts_ns = kT0 + 1, .flags = kFlagInbound, .comment = kComment1, .has_pid_tid = true,
         .pid = 1234, .tid = 1235, .has_packetid = true, .packetid = 42, .has_queue = true, .queue = 3,
         .has_dropcount = true, .dropcount = 7, .has_verdict_tc = true, .verdict_tc = 0},
        ethernet(ipv4_udp(1001, "first")));
  b.epb({.interface_id = 0, .ts_ns = kT0 + 2000, .flags = kFlagOutbound, .comment = "pid=99 tid=100 uid=1000 comm=wget",
         .has_pid_tid = true, .pid = 99, .tid = 100, .has_packetid = true, .packetid = 43},
        ethernet(ipv4_udp(1002, "second packet")));
  b.epb({.interface_id = 1, .ts_ns = kT0 + 3000}, second(ipv4_udp(1003, "bare")));
  b.epb({.interface_id = 1, .ts_ns = kT0 + 4000, .flags = kFlagOutbound, .comment = "raw one",
         .has_pid_tid = true, .pid = 5, .tid = 6, .has_packetid = true, .packetid = 44, .has_queue = true,
         .queue = 1, .has_dropcount = true, .dropcount = 0, .has_verdict_tc = true, .verdict_tc = 2},
        second(ipv4_udp(1004, "fourth")));
  b.dsb(kKeylog2);
  b.isb({.interface_id = 0, .ts_ns = kT0 + 5000, .starttime_ns = kT0, .endtime_ns = kT0 + 5000, .ifrecv = 1000,
         .ifdrop = 11, .osdrop = 12, .usrdeliv = 977});
  b.isb({.interface_id = 1, .ts_ns = kT0 + 5000, .starttime_ns = kT0, .endtime_ns = kT0 + 5000, .ifrecv = 2,
         .ifdrop = 0, .osdrop = 0, .usrdeliv = 2});
  return b;
}

class PcapngReadback : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/p1-pcapng-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    if (!getenv("P1_KEEP")) fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

TEST_F(PcapngReadback, TsharkVerboseReadsEveryPacketCleanly) {
  const fs::path f = dir_ / "mixed.pcapng";
  sample(kLinktypeRaw).write(f);
  const CmdResult r = run("tshark -r " + f.string() + " -V", dir_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(alarming(r.err), "") << "tshark complained";
  EXPECT_EQ(r.out.find("Malformed"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("Expert Info (Error"), std::string::npos) << r.out;
  // tshark shows the IDB names and the linktype of each interface.
  EXPECT_NE(r.out.find("Interface name: p1veth0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Interface name: p1tun0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Encapsulation type: Raw IP"), std::string::npos) << r.out;
}

TEST_F(PcapngReadback, TsharkShowsEpbOptions) {
  const fs::path f = dir_ / "mixed.pcapng";
  sample(kLinktypeRaw).write(f);
  const CmdResult r = run("tshark -r " + f.string() +
                              " -T fields -E separator=/t -e frame.interface_id -e frame.time_epoch"
                              " -e frame.comment -e frame.packet_flags_direction -e frame.p2p_dir"
                              " -e frame.packet_id -e frame.interface_queue -e frame.drop_count"
                              " -e frame.verdict.ebpf_tc -e udp.srcport",
                          dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(alarming(r.err), "");
  const auto l = lines(r.out);
  ASSERT_EQ(l.size(), 4u) << r.out;
  // ns timestamps survive (if_tsresol=9): .000000001 is only representable in ns.
  EXPECT_EQ(l[0], std::string("0\t1764151200.000000001\t") + kComment1 + "\t0x00000001\t1\t42\t3\t7\t0\t1001");
  EXPECT_EQ(l[1], "0\t1764151200.000002000\tpid=99 tid=100 uid=1000 comm=wget\t0x00000002\t0\t43\t\t\t\t1002");
  EXPECT_EQ(l[2], "1\t1764151200.000003000\t\t\t\t\t\t\t\t1003");
  EXPECT_EQ(l[3], "1\t1764151200.000004000\traw one\t0x00000002\t0\t44\t1\t0\t2\t1004");
  // The comment is filterable, which is what users rely on.
  const CmdResult c = run("tshark -r " + f.string() + " -Y 'frame.comment contains \"comm=curl\"' -T fields -e frame.number", dir_);
  EXPECT_EQ(c.out, "1\n");
}

TEST_F(PcapngReadback, DsbCountSeenByCapinfosAndBlockReader) {
  const fs::path f = dir_ / "mixed.pcapng";
  sample(kLinktypeRaw).write(f);
  const CmdResult r = run("capinfos " + f.string(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Number of packets:   4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Number of interfaces in file: 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Number of decryption secrets in file: 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Filter string = udp port 53"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Time precision = nanoseconds (9)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Capture application: ecapture-hp pcapng test"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Number of stat entries = 1"), std::string::npos) << r.out;
  // The MIME Files Format reader dissects every block; both DSBs and their contents must show.
  const CmdResult m = run("tshark -X read_format:'MIME Files Format' -r " + f.string() +
                              " -T fields -e pcapng.dsb.secrets_type -e pcapng.dsb.secrets_length",
                          dir_);
  ASSERT_EQ(m.exit_code, 0) << m.err;
  EXPECT_EQ(alarming(m.err), "");
  const std::string want = std::to_string(std::string_view(kKeylog1).size());
  size_t n = 0;
  for (size_t at = m.out.find("0x544c534b"); at != std::string::npos; at = m.out.find("0x544c534b", at + 1)) ++n;
  EXPECT_EQ(n, 2u) << m.out;
  EXPECT_NE(m.out.find(want), std::string::npos) << m.out;
}

TEST_F(PcapngReadback, IsbCountersSeenByBlockReader) {
  const fs::path f = dir_ / "mixed.pcapng";
  sample(kLinktypeRaw).write(f);
  const CmdResult m = run("tshark -X read_format:'MIME Files Format' -r " + f.string() +
                              " -T fields -E separator=/t -e pcapng.interface_id"
                              " -e pcapng.options.option.data.interface.received"
                              " -e pcapng.options.option.data.interface.dropped"
                              " -e pcapng.options.option.data.interface.dropped_by_os"
                              " -e pcapng.options.option.data.interface.delivered_to_user"
                              " -e pcapng.options.option.data.start_time"
                              " -e pcapng.options.option.data.end_time",
                          dir_);
  ASSERT_EQ(m.exit_code, 0) << m.err;
  EXPECT_EQ(alarming(m.err), "");
  // The block reader shows the whole file as one frame, so each field lists its values in file
  // order: 4 EPBs (interfaces 0,0,1,1) then the ISBs of interfaces 0 and 1.
  const auto l = lines(m.out);
  ASSERT_EQ(l.size(), 1u) << m.out;
  EXPECT_EQ(l[0].substr(0, l[0].find("\t", l[0].find("977,2"))),
            "0,0,1,1,0,1\t1000,2\t11,0\t12,0\t977,2") << m.out;
  // tshark 4.0 prints isb_starttime/endtime without a value; the ISB's own timestamp uses the
  // same high/low-word encoding (put_ts) and shows in ns, which pins that format and the unit.
  const CmdResult t = run("tshark -X read_format:'MIME Files Format' -r " + f.string() +
                              " -T fields -e pcapng.timestamp",
                          dir_);
  EXPECT_NE(t.out.find("10:00:00.000004000 UTC,Nov 26, 2025 10:00:00.000005000 UTC,Nov 26, 2025 10:00:00.000005000 UTC"),
            std::string::npos) << t.out;
}

TEST_F(PcapngReadback, TcpdumpReadsEveryPacketCleanly) {
  // libpcap requires every IDB of a file to share the first one's linktype (see the next test),
  // so the tcpdump file has two Ethernet interfaces; everything else is the same sample.
  const fs::path f = dir_ / "ethernet.pcapng";
  sample(kLinktypeEthernet).write(f);
  const CmdResult r = run("tcpdump -nn -v -r " + f.string(), dir_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(alarming(r.err), "") << "tcpdump complained";
  // -v prints two lines per IPv4 packet; the header line carries the direction from epb_flags.
  size_t udp = 0;
  for (const auto& l : lines(r.out)) udp += l.find("UDP, length") != std::string::npos;
  EXPECT_EQ(udp, 4u) << r.out;
  EXPECT_EQ(r.out.find("bad cksum"), std::string::npos) << r.out;
  // tshark agrees on the same file.
  const CmdResult t = run("tshark -r " + f.string() + " -V", dir_);
  EXPECT_EQ(t.exit_code, 0);
  EXPECT_EQ(alarming(t.err), "");
  EXPECT_EQ(t.out.find("Malformed"), std::string::npos);
}

// Documents a reader limit the writer must respect: libpcap (tcpdump 4.99 / libpcap 1.10 here)
// refuses a file whose IDBs have different linktypes, at the first packet of the second one.
// tshark reads it fine. If this test starts failing, libpcap learned mixed linktypes.
TEST_F(PcapngReadback, TcpdumpRefusesMixedLinktypes) {
  const fs::path f = dir_ / "mixed.pcapng";
  sample(kLinktypeRaw).write(f);
  const CmdResult r = run("tcpdump -nn -r " + f.string(), dir_);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("different from the type of the first interface"), std::string::npos) << r.err;
}

// Filler blocks (the writer's O_DIRECT tail padding) between and after packets, in every size
// shape encode_filler has (16, 20, 24 and large): both readers see the same 4 packets, no
// complaint, and our own block walker accepts the whole file.
TEST_F(PcapngReadback, FillerBlocksAreInvisibleToReaders) {
  Builder b;
  b.shb({.hardware = "x86_64 test", .os = "Linux 6.18", .userappl = "ecapture-hp filler test"});
  b.idb({.linktype = kLinktypeEthernet, .name = "p1veth0"});
  const size_t sizes[] = {16, 20, 24, 4092 + 16};
  for (size_t i = 0; i < 4; i++) {
    b.add(sizes[i], [&](auto o) { return encode_filler(o, sizes[i]); });
    b.epb({.interface_id = 0, .ts_ns = kT0 + i}, ethernet(ipv4_udp(uint16_t(2000 + i), "after filler")));
  }
  b.add(8192, [&](auto o) { return encode_filler(o, 8192); });  // the file ends in one
  EXPECT_EQ(complete_prefix(b.bytes()), b.bytes().size());
  const fs::path f = dir_ / "filler.pcapng";
  b.write(f);
  const CmdResult t = run("tshark -r " + f.string() + " -T fields -e udp.srcport", dir_);
  EXPECT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(alarming(t.err), "");
  EXPECT_EQ(t.out, "2000\n2001\n2002\n2003\n");
  const CmdResult d = run("tcpdump -nn -r " + f.string(), dir_);
  EXPECT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(alarming(d.err), "");
  EXPECT_EQ(lines(d.out).size(), 4u) << d.out;
  const CmdResult c = run("capinfos -c -M " + f.string(), dir_);
  EXPECT_NE(c.out.find("Number of packets:   4"), std::string::npos) << c.out;
}

}  // namespace
}  // namespace ehp::pcapng
