// SPDX-License-Identifier: BSD-2-Clause
// PcapngSink::add_interface (issue 16: an interface that comes back; -i any: a new one): its IDB
// is in the file before any of its packets, with the next interface id, and every file a rotation
// opens later repeats every IDB (gone ones too), so the ids mean the same in each file. Files are
// read back with the replay reader, which refuses a packet whose interface was not described
// before it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/capture_file.h"
#include "sink/pcapng_sink.h"

namespace {

namespace fs = std::filesystem;

struct Read {
  std::vector<std::string> names;   // IDB names in file order
  std::vector<uint32_t> packet_ids;  // interface id of each packet
  std::string error;
};

Read read_back(const std::string& path) {
  Read r;
  auto in = ehp::pipeline::CaptureFileReader::open(path, &r.error);
  if (!in) return r;
  ehp::pipeline::CaptureRecord rec;
  int rc;
  while ((rc = in->next(&rec, &r.error)) == 1)
    if (rec.kind == ehp::pipeline::CaptureRecord::Kind::Packet) r.packet_ids.push_back(rec.interface_id);
  if (rc == 0) r.error.clear();
  for (const auto& i : in->interfaces()) r.names.push_back(i.name);
  return r;
}

class SinkInterfaces : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(EHP_SINK_TEST_DIR) / ("sink_ifaces." + std::to_string(getpid()) + "." +
                                          ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void put(ehp::PcapngSink& s, uint32_t id, uint64_t ts_ns) {
    std::vector<uint8_t> frame(60, 0);
    frame[12] = 0x08;  // IPv4 ethertype, nothing else: not TCP, not carried
    ehp::correlate::PacketMeta m;
    m.ts_ns = ts_ns;
    m.interface_id = id;
    m.linktype = 1;
    m.wire_len = m.cap_len = uint32_t(frame.size());
    s.packet(m, frame);
  }
  fs::path dir_;
};

constexpr uint64_t kT0 = 1'780'000'000'000'000'000ull;

TEST_F(SinkInterfaces, AddedInterfaceGetsTheNextIdAndItsIdbPrecedesItsPackets) {
  ehp::SinkOptions o;
  o.path = (dir_ / "one.pcapng").string();
  o.direct_io = false;
  std::string err;
  auto s = ehp::PcapngSink::open(o, {{"a", "first", 1}}, &err);
  ASSERT_TRUE(s) << err;
  put(*s, 0, kT0);
  s->interface_gone(0, "interface a was deleted");
  EXPECT_EQ(s->add_interface({"a", "a again", 1}), 1u);
  put(*s, 1, kT0 + 1000);
  EXPECT_EQ(s->add_interface({"b", "new", 1}), 2u);
  put(*s, 2, kT0 + 2000);
  put(*s, 1, kT0 + 3000);
  ASSERT_TRUE(s->close(&err)) << err;
  EXPECT_EQ(s->interface_packets(1), 2u);
  const Read r = read_back(o.path);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.names, (std::vector<std::string>{"a", "a", "b"}));
  EXPECT_EQ(r.packet_ids, (std::vector<uint32_t>{0, 1, 2, 1}));
}

TEST_F(SinkInterfaces, EveryRotatedFileRepeatsEveryIdb) {
  ehp::SinkOptions o;
  o.path = (dir_ / "rot.pcapng").string();
  o.direct_io = false;
  o.rotate_bytes = 1;  // a new file before every packet but the first of a file
  std::string err;
  auto s = ehp::PcapngSink::open(o, {{"a", "first", 1}}, &err);
  ASSERT_TRUE(s) << err;
  put(*s, 0, kT0);
  s->interface_gone(0, "interface a was deleted");
  ASSERT_EQ(s->add_interface({"a", "a again", 1}), 1u);  // into the first file
  put(*s, 1, kT0 + 1000);                               // the second file
  put(*s, 1, kT0 + 2000);                               // the third
  ASSERT_TRUE(s->close(&err)) << err;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir_)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 3u);
  const Read first = read_back(files[0].string());
  ASSERT_EQ(first.error, "");
  EXPECT_EQ(first.names, (std::vector<std::string>{"a", "a"}));
  EXPECT_EQ(first.packet_ids, (std::vector<uint32_t>{0}));
  for (size_t i = 1; i < files.size(); ++i) {
    const Read r = read_back(files[i].string());
    ASSERT_EQ(r.error, "") << files[i];
    EXPECT_EQ(r.names, (std::vector<std::string>{"a", "a"})) << files[i];
    EXPECT_EQ(r.packet_ids, (std::vector<uint32_t>{1})) << files[i];
  }
}

}  // namespace
