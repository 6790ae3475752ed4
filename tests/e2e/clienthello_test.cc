// SPDX-License-Identifier: BSD-2-Clause
// End-to-end: real TLS 1.2 / 1.3 handshakes between `openssl s_server` and `openssl s_client`
// over IPv4 and IPv6 loopback, captured by dumpcap, read back with libpcap and run through
// decode_frame + classify_tls. The ClientHello randoms must be exactly the client randoms
// s_client wrote to its key log; tshark (an independent dissector) must find the same
// hello frames. Needs root (dumpcap on lo), openssl, dumpcap and tshark on PATH.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "net/frame.h"
#include "tls/keys.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using ehp::net::FrameInfo;
using ehp::net::TlsHandshake;
using Random = std::array<uint8_t, 32>;

std::string hex(const Random& r) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t b : r) {
    s += d[b >> 4];
    s += d[b & 15];
  }
  return s;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Polls `cond` every 20 ms until it holds or `timeout` passes: waiting on a condition.
bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

// Starts argv with stdin from /dev/null and stdout+stderr into `log`.
pid_t spawn(const std::vector<std::string>& argv, const fs::path& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

// Waits for `pid` to exit; returns its wait status, or -1 on timeout (the child is killed).
int wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
  int status = 0;
  const bool done = wait_until(
      [&] {
        const pid_t r = waitpid(pid, &status, WNOHANG);
        return r == pid || r < 0;
      },
      timeout);
  if (!done) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
  }
  return status;
}

uint16_t free_port(int family) {
  const int s = socket(family, SOCK_STREAM, 0);
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    len = sizeof *a;
  }
  uint16_t port = 0;
  if (bind(s, reinterpret_cast<sockaddr*>(&ss), len) == 0 &&
      getsockname(s, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                   : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  }
  close(s);
  return port;
}

struct Packet {
  size_t frame_no;  // 1-based, as tshark numbers frames
  std::vector<uint8_t> bytes;
};

// Reads every complete packet of a (possibly still growing) capture file.
std::vector<Packet> read_capture(const fs::path& file, int* linktype, std::string* err) {
  std::vector<Packet> out;
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_open_offline(file.c_str(), errbuf);
  if (!p) {
    if (err) *err = errbuf;
    return out;
  }
  if (linktype) *linktype = pcap_datalink(p);
  pcap_pkthdr* h;
  const u_char* data;
  size_t n = 0;
  while (pcap_next_ex(p, &h, &data) == 1) out.push_back({++n, std::vector<uint8_t>(data, data + h->caplen)});
  pcap_close(p);
  return out;
}

uint16_t to_linktype(int dlt) { return dlt == DLT_EN10MB ? ehp::net::kLinktypeEthernet : 0; }

bool capture_has_marker(const fs::path& file, uint16_t port, const std::string& marker) {
  int dlt = -1;
  for (const Packet& pk : read_capture(file, &dlt, nullptr)) {
    FrameInfo fi;
    if (!ehp::net::decode_frame(to_linktype(dlt), pk.bytes, fi)) continue;
    if (fi.l4_proto != IPPROTO_UDP || fi.dport != port) continue;
    if (std::string(reinterpret_cast<const char*>(pk.bytes.data() + fi.l4_payload_offset),
                    fi.l4_payload_len) == marker) {
      return true;
    }
  }
  return false;
}

void send_marker(uint16_t port, const std::string& marker) {
  const int s = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sendto(s, marker.data(), marker.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  close(s);
}

struct Connection {
  int family = AF_INET;  // AF_INET / AF_INET6
  std::string version;   // "-tls1_2" / "-tls1_3"
  std::string suites;    // TLS 1.3 -ciphersuites, or ""
  fs::path keylog;
  Random client_random{};
  size_t secret_len = 0;
  std::set<std::string> labels;
  bool hrr = false;  // sent to the P-256-only server: HelloRetryRequest expected
};

struct Hello {
  size_t frame_no;
  TlsHandshake type;
  Random random;
  FrameInfo fi;
  bool is_hrr() const { return ehp::net::is_hello_retry_request(ehp::net::TlsHello{type, random}); }
};

// One capture shared by all checks below: servers, capture and 10 handshakes, once.
class ClientHelloE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/p3-clienthello-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(std::system(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                           "-nodes -days 1 -subj /CN=p3test -keyout " + (dir_ / "key.pem").string() +
                           " -out " + (dir_ / "cert.pem").string() + " >/dev/null 2>&1").c_str()),
              0)
        << "openssl req failed";

    port4_ = free_port(AF_INET);
    port6_ = free_port(AF_INET6);
    port_hrr_ = free_port(AF_INET);
    marker_port_ = free_port(AF_INET);
    ASSERT_TRUE(port4_ && port6_ && port_hrr_ && marker_port_);
    capture_ = dir_ / "hello.pcapng";
    const std::string filter = "tcp port " + std::to_string(port4_) + " or tcp port " +
                               std::to_string(port6_) + " or tcp port " + std::to_string(port_hrr_) +
                               " or udp port " + std::to_string(marker_port_);
    dumpcap_ = spawn({"dumpcap", "-q", "-i", "lo", "-f", filter, "-w", capture_.string()},
                     dir_ / "dumpcap.log");
    ASSERT_GT(dumpcap_, 0) << "dumpcap did not start";
    // dumpcap is capturing once a marker sent now shows up in its file.
    ASSERT_TRUE(wait_until(
        [&] {
          send_marker(marker_port_, "p3-start");
          return capture_has_marker(capture_, marker_port_, "p3-start");
        },
        std::chrono::seconds(20)))
        << "dumpcap never captured the start marker: " << slurp(dir_ / "dumpcap.log");

    // Third server: accepts only P-256, so a client offering an X25519 key share first gets
    // a HelloRetryRequest and sends a second ClientHello with the same random.
    for (int which = 0; which < 3; ++which) {
      const std::string host = which == 0   ? "127.0.0.1:" + std::to_string(port4_)
                               : which == 1 ? "[::1]:" + std::to_string(port6_)
                                            : "127.0.0.1:" + std::to_string(port_hrr_);
      const fs::path log = dir_ / ("s_server" + std::to_string(which) + ".log");
      std::vector<std::string> argv = {"openssl", "s_server", "-cert", (dir_ / "cert.pem").string(),
                                       "-key", (dir_ / "key.pem").string(), "-accept", host, "-www"};
      if (which == 2) {
        argv.push_back("-groups");
        argv.push_back("P-256");
      }
      const pid_t pid = spawn(argv, log);
      ASSERT_GT(pid, 0);
      servers_.push_back(pid);
      ASSERT_TRUE(wait_until([&] { return slurp(log).find("ACCEPT") != std::string::npos; },
                             std::chrono::seconds(10)))
          << "s_server not listening: " << slurp(log);
    }

    auto conn = [](int family, const char* version, const char* suites) {
      Connection c;
      c.family = family;
      c.version = version;
      c.suites = suites;
      return c;
    };
    const std::vector<Connection> plan = {
        conn(AF_INET, "-tls1_2", ""),
        conn(AF_INET, "-tls1_2", ""),
        conn(AF_INET, "-tls1_3", "TLS_AES_128_GCM_SHA256"),
        conn(AF_INET, "-tls1_3", "TLS_AES_128_GCM_SHA256"),
        conn(AF_INET, "-tls1_3", "TLS_AES_256_GCM_SHA384"),
        conn(AF_INET6, "-tls1_2", ""),
        conn(AF_INET6, "-tls1_2", ""),
        conn(AF_INET6, "-tls1_3", "TLS_CHACHA20_POLY1305_SHA256"),
        conn(AF_INET6, "-tls1_3", "TLS_AES_256_GCM_SHA384"),
        conn(AF_INET, "-tls1_3", "TLS_AES_128_GCM_SHA256"),  // -> HelloRetryRequest server
    };
    const size_t hrr_index = plan.size() - 1;
    for (size_t i = 0; i < plan.size(); ++i) {
      Connection c = plan[i];
      c.keylog = dir_ / ("keylog" + std::to_string(i) + ".txt");
      c.hrr = i == hrr_index;
      const std::string target = c.hrr                ? "127.0.0.1:" + std::to_string(port_hrr_)
                                 : c.family == AF_INET ? "127.0.0.1:" + std::to_string(port4_)
                                                       : "[::1]:" + std::to_string(port6_);
      std::vector<std::string> argv = {"openssl", "s_client", "-connect", target, c.version,
                                       "-keylogfile", c.keylog.string(), "-servername", "p3test"};
      if (c.hrr) {
        argv.push_back("-groups");
        argv.push_back("X25519:P-256");
      }
      if (!c.suites.empty()) {
        argv.push_back("-ciphersuites");
        argv.push_back(c.suites);
      }
      const fs::path log = dir_ / ("s_client" + std::to_string(i) + ".log");
      const pid_t pid = spawn(argv, log);
      ASSERT_GT(pid, 0);
      const int st = wait_exit(pid, std::chrono::seconds(15));
      ASSERT_TRUE(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
          << "s_client " << i << " failed: " << slurp(log);
      conns_.push_back(c);
    }

    // Everything sent before the end marker is in the file once the marker is.
    ASSERT_TRUE(wait_until(
        [&] {
          send_marker(marker_port_, "p3-end");
          return capture_has_marker(capture_, marker_port_, "p3-end");
        },
        std::chrono::seconds(20)))
        << "dumpcap never wrote the end marker";
    kill(dumpcap_, SIGINT);
    ASSERT_GE(wait_exit(dumpcap_, std::chrono::seconds(10)), 0);
    dumpcap_ = -1;

    int dlt = -1;
    std::string err;
    packets_ = read_capture(capture_, &dlt, &err);
    ASSERT_FALSE(packets_.empty()) << err;
    ASSERT_EQ(dlt, DLT_EN10MB);
    linktype_ = to_linktype(dlt);
  }

  static void TearDownTestSuite() {
    for (pid_t pid : servers_) {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
    servers_.clear();
    if (dumpcap_ > 0) {
      kill(dumpcap_, SIGTERM);
      waitpid(dumpcap_, nullptr, 0);
    }
    // Keep the capture and logs of a failed run for inspection; remove them otherwise.
    const auto* suite = ::testing::UnitTest::GetInstance()->current_test_suite();
    if (dir_.empty()) return;
    if (suite && suite->Failed()) {
      std::fprintf(stderr, "artifacts kept in %s\n", dir_.c_str());
    } else {
      fs::remove_all(dir_);
    }
  }

  static bool is_server_port(uint16_t p) { return p == port4_ || p == port6_ || p == port_hrr_; }

  static inline fs::path dir_, capture_;
  static inline uint16_t port4_ = 0, port6_ = 0, port_hrr_ = 0, marker_port_ = 0, linktype_ = 0;
  static inline pid_t dumpcap_ = -1;
  static inline std::vector<pid_t> servers_;
  static inline std::vector<Connection> conns_;
  static inline std::vector<Packet> packets_;
};

// Fills client_random / labels / secret_len of every connection from its key log, parsed
// with the strict parser: every line OpenSSL writes must be accepted.
void load_keylogs(std::vector<Connection>& conns) {
  for (Connection& c : conns) {
    std::ifstream in(c.keylog);
    std::string line;
    std::set<std::string> randoms;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::string err;
      auto e = ehp::tls::parse_keylog_line(line, &err);
      ASSERT_TRUE(e.has_value()) << "refused OpenSSL's line [" << line << "]: " << err;
      c.client_random = e->client_random;
      c.labels.insert(e->label);
      c.secret_len = e->secret.size();
      randoms.insert(hex(e->client_random));
    }
    ASSERT_EQ(randoms.size(), 1u) << c.keylog;
  }
}

constexpr size_t kConnections = 10;

TEST_F(ClientHelloE2E, KeylogsParseStrictly) {
  ASSERT_EQ(conns_.size(), kConnections) << "set-up did not complete";
  auto conns = conns_;
  load_keylogs(conns);
  for (const Connection& c : conns) {
    if (c.version == "-tls1_2") {
      EXPECT_EQ(c.labels, std::set<std::string>{"CLIENT_RANDOM"});
      EXPECT_EQ(c.secret_len, 48u);
    } else {
      EXPECT_EQ(c.labels, (std::set<std::string>{"CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                                                 "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                                                 "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0",
                                                 "EXPORTER_SECRET"}));
      EXPECT_EQ(c.secret_len, c.suites == "TLS_AES_256_GCM_SHA384" ? 48u : 32u) << c.suites;
    }
  }
}

TEST_F(ClientHelloE2E, ClientHelloRandomsMatchKeylogExactlyOncePerConnection) {
  ASSERT_EQ(conns_.size(), kConnections) << "set-up did not complete";
  auto conns = conns_;
  load_keylogs(conns);

  struct KeyLess {
    bool operator()(const ehp::net::FlowKey& a, const ehp::net::FlowKey& b) const {
      return std::memcmp(&a, &b, sizeof a) < 0;
    }
  };
  std::map<ehp::net::FlowKey, std::vector<Hello>, KeyLess> by_flow;
  std::map<ehp::net::FlowKey, int, KeyLess> syns;
  size_t tls_flows_seen = 0;
  for (const Packet& pk : packets_) {
    FrameInfo fi;
    if (!ehp::net::decode_frame(linktype_, pk.bytes, fi)) {
      ADD_FAILURE() << "frame " << pk.frame_no << " did not decode";
      continue;
    }
    if (fi.l4_proto != IPPROTO_TCP) continue;
    const auto key = ehp::net::flow_key(fi);
    if ((fi.tcp_flags & 0x12) == 0x02) ++syns[key];  // SYN without ACK: one per connection
    const auto h = ehp::net::classify_tls(
        std::span<const uint8_t>(pk.bytes.data() + fi.l4_payload_offset, fi.l4_payload_len));
    if (h.type != TlsHandshake::None) by_flow[key].push_back({pk.frame_no, h.type, h.random, fi});
  }
  ASSERT_EQ(syns.size(), conns.size()) << "one TCP connection per s_client run";

  std::map<std::string, int> family_of_random;  // hex random -> AF_*
  for (const Connection& c : conns) family_of_random[hex(c.client_random)] = c.family;
  ASSERT_EQ(family_of_random.size(), conns.size()) << "client randoms must be distinct";

  std::map<std::string, bool> hrr_of_random;
  for (const Connection& c : conns) hrr_of_random[hex(c.client_random)] = c.hrr;

  std::set<std::string> found;
  size_t hrr_flows = 0;
  for (const auto& [key, list] : by_flow) {
    ++tls_flows_seen;
    std::vector<const Hello*> chs, shs;
    for (const Hello& h : list) {
      if (h.type == TlsHandshake::ClientHello) {
        chs.push_back(&h);
        EXPECT_TRUE(is_server_port(h.fi.dport)) << "ClientHello not sent to the server, frame "
                                                << h.frame_no;
      } else {
        shs.push_back(&h);
        EXPECT_TRUE(is_server_port(h.fi.sport)) << "ServerHello not from the server, frame "
                                                << h.frame_no;
      }
    }
    ASSERT_FALSE(chs.empty()) << "a ServerHello without a ClientHello";
    const std::string r = hex(chs[0]->random);
    ASSERT_TRUE(family_of_random.count(r)) << "ClientHello random " << r << " in frame "
                                           << chs[0]->frame_no << " is in no key log";
    EXPECT_EQ(chs[0]->fi.ip_version, family_of_random[r] == AF_INET ? 4 : 6);
    found.insert(r);
    if (hrr_of_random[r]) {
      // ClientHello, HelloRetryRequest, ClientHello (same random, after a CCS), ServerHello.
      ++hrr_flows;
      ASSERT_EQ(chs.size(), 2u);
      ASSERT_EQ(shs.size(), 2u);
      EXPECT_EQ(chs[1]->random, chs[0]->random) << "the retried ClientHello keeps its random";
      EXPECT_TRUE(shs[0]->is_hrr());
      EXPECT_FALSE(shs[1]->is_hrr());
      EXPECT_TRUE(chs[0]->frame_no < shs[0]->frame_no && shs[0]->frame_no < chs[1]->frame_no &&
                  chs[1]->frame_no < shs[1]->frame_no);
    } else {
      EXPECT_EQ(chs.size(), 1u) << "ClientHellos in one connection";
      EXPECT_EQ(shs.size(), 1u) << "ServerHellos in one connection";
      ASSERT_FALSE(shs.empty());
      EXPECT_FALSE(shs[0]->is_hrr());
      EXPECT_LT(chs[0]->frame_no, shs[0]->frame_no);
    }
  }
  EXPECT_EQ(hrr_flows, 1u);
  EXPECT_EQ(tls_flows_seen, conns.size());
  EXPECT_EQ(found.size(), conns.size()) << "every key log's client random was seen on the wire";
}

// tshark, an independent TLS dissector, must see hellos in exactly the frames we classify
// as hellos (no false positives, no misses), with the same randoms.
TEST_F(ClientHelloE2E, SameHelloFramesAsTshark) {
  ASSERT_EQ(conns_.size(), kConnections) << "set-up did not complete";
  std::set<std::string> ours;
  for (const Packet& pk : packets_) {
    FrameInfo fi;
    if (!ehp::net::decode_frame(linktype_, pk.bytes, fi) || fi.l4_proto != IPPROTO_TCP) continue;
    const auto h = ehp::net::classify_tls(
        std::span<const uint8_t>(pk.bytes.data() + fi.l4_payload_offset, fi.l4_payload_len));
    if (h.type == TlsHandshake::None) continue;
    ours.insert(std::to_string(pk.frame_no) + " " +
                (h.type == TlsHandshake::ClientHello ? "1" : "2") + " " + hex(h.random));
  }
  const fs::path out = dir_ / "tshark.txt";
  const std::string cmd = "tshark -n -r " + capture_.string() + " -d tcp.port==" +
                          std::to_string(port4_) + ",tls -d tcp.port==" + std::to_string(port6_) +
                          ",tls -Y 'tls.handshake.type == 1 || tls.handshake.type == 2'"
                          " -T fields -E separator=/t -e frame.number -e tls.handshake.type"
                          " -e tls.handshake.random > " + out.string() + " 2>" +
                          (dir_ / "tshark.err").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(dir_ / "tshark.err");
  std::set<std::string> theirs;
  std::istringstream in(slurp(out));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string frame, types, random;
    std::getline(ls, frame, '\t');
    std::getline(ls, types, '\t');
    std::getline(ls, random, '\t');
    // A TLS 1.2 server flight lists "2,11,12,14": the hello is the first message.
    const std::string first_type = types.substr(0, types.find(','));
    const std::string first_random = random.substr(0, random.find(','));
    theirs.insert(frame + " " + first_type + " " + first_random);
  }
  EXPECT_EQ(ours.size(), 2 * conns_.size() + 2);  // + HelloRetryRequest and the second ClientHello
  EXPECT_EQ(ours, theirs);
}

}  // namespace
