// SPDX-License-Identifier: BSD-2-Clause
// The key check (engine/tls/verify) on real TLS records: an OpenSSL client and server shake
// hands in memory (BIO pairs), the client's key log callback gives the lines a traced binary
// would deliver, and the bytes each side sent are cut into TCP segments for the verifier.
// A flipped byte in the record or in the secret must fail; suites it cannot check must be
// unverifiable, never verified or failed.
#include <gtest/gtest.h>

#include <functional>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "net/frame.h"
#include "tls/keys.h"
#include "tls/verify.h"

namespace {

using ehp::tls::KeyCheck;

struct Handshake {
  std::vector<uint8_t> c2s, s2c;  // every byte each side sent, in order
  // (from_client, bytes) in the order they were sent, so segments interleave as on the wire
  std::vector<std::pair<bool, std::vector<uint8_t>>> flights;
  std::string keylog;
  std::array<uint8_t, 32> client_random{};
  uint16_t suite = 0;
  int version = 0;
};

std::string* g_keylog = nullptr;
void keylog_cb(const SSL*, const char* line) {
  g_keylog->append(line);
  g_keylog->push_back('\n');
}

struct Opts {
  int version = TLS1_3_VERSION;
  const char* suites13 = nullptr;  // TLS 1.3 ciphersuites
  const char* list12 = nullptr;    // TLS 1.2 cipher list
  bool force_hrr = false;
};

EVP_PKEY* test_key() {
  static EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  return k;
}

X509* test_cert() {
  static X509* x = [] {
    X509* c = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
    X509_gmtime_adj(X509_getm_notBefore(c), 0);
    X509_gmtime_adj(X509_getm_notAfter(c), 3600);
    X509_set_pubkey(c, test_key());
    X509_NAME* n = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("keycheck"), -1, -1, 0);
    X509_set_issuer_name(c, n);
    X509_sign(c, test_key(), EVP_sha256());
    return c;
  }();
  return x;
}

void move(BIO* from, BIO* to, bool from_client, Handshake& h) {
  uint8_t buf[4096];
  int n;
  while ((n = BIO_read(from, buf, sizeof buf)) > 0) {
    BIO_write(to, buf, n);
    auto& all = from_client ? h.c2s : h.s2c;
    all.insert(all.end(), buf, buf + n);
    if (!h.flights.empty() && h.flights.back().first == from_client)
      h.flights.back().second.insert(h.flights.back().second.end(), buf, buf + n);
    else
      h.flights.emplace_back(from_client, std::vector<uint8_t>(buf, buf + n));
  }
}

std::optional<Handshake> run_handshake(const Opts& o) {
  Handshake h;
  g_keylog = &h.keylog;
  SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  for (SSL_CTX* c : {sctx, cctx}) {
    SSL_CTX_set_min_proto_version(c, o.version);
    SSL_CTX_set_max_proto_version(c, o.version);
    if (o.suites13) SSL_CTX_set_ciphersuites(c, o.suites13);
    if (o.list12) SSL_CTX_set_cipher_list(c, o.list12);
  }
  SSL_CTX_use_certificate(sctx, test_cert());
  SSL_CTX_use_PrivateKey(sctx, test_key());
  if (o.force_hrr) {
    SSL_CTX_set1_groups_list(sctx, "P-256");
    SSL_CTX_set1_groups_list(cctx, "X25519:P-256");  // key share for X25519 only: the server asks again
  }
  SSL_CTX_set_keylog_callback(cctx, keylog_cb);
  SSL* c = SSL_new(cctx);
  SSL* s = SSL_new(sctx);
  BIO *c_in = BIO_new(BIO_s_mem()), *c_out = BIO_new(BIO_s_mem());
  BIO *s_in = BIO_new(BIO_s_mem()), *s_out = BIO_new(BIO_s_mem());
  SSL_set_bio(c, c_in, c_out);
  SSL_set_bio(s, s_in, s_out);
  SSL_set_connect_state(c);
  SSL_set_accept_state(s);
  bool cd = false, sd = false;
  for (int i = 0; i < 20 && !(cd && sd); ++i) {
    if (!cd) cd = SSL_do_handshake(c) == 1;
    move(c_out, s_in, true, h);
    if (!sd) sd = SSL_do_handshake(s) == 1;
    move(s_out, c_in, false, h);
  }
  // Some application data both ways, as a real session has after the handshake.
  const char req[] = "GET / HTTP/1.1\r\n\r\n";
  SSL_write(c, req, sizeof req - 1);
  move(c_out, s_in, true, h);
  char buf[256];
  SSL_read(s, buf, sizeof buf);
  SSL_write(s, "HTTP/1.1 200 OK\r\n\r\n", 19);
  move(s_out, c_in, false, h);
  SSL_read(c, buf, sizeof buf);
  move(c_out, s_in, true, h);
  std::optional<Handshake> out;
  if (cd && sd) {
    SSL_get_client_random(c, h.client_random.data(), 32);
    h.suite = uint16_t(SSL_CIPHER_get_id(SSL_get_current_cipher(c)) & 0xFFFF);
    h.version = SSL_version(c);
    out = std::move(h);
  }
  SSL_free(c);
  SSL_free(s);
  SSL_CTX_free(cctx);
  SSL_CTX_free(sctx);
  g_keylog = nullptr;
  return out;
}

// The lines of one label, or "" (the secret's bytes out of the hex).
std::vector<uint8_t> secret_of(const std::string& keylog, const std::string& label) {
  size_t p = 0;
  while (p < keylog.size()) {
    size_t nl = keylog.find('\n', p);
    auto e = ehp::tls::parse_keylog_line(std::string_view(keylog).substr(p, nl - p));
    if (e && e->label == label) return e->secret;
    p = nl + 1;
  }
  return {};
}

struct Result {
  int calls = 0;
  uint32_t source = 0;
  KeyCheck r = KeyCheck::Unverifiable;
  std::string why;
};

// Feeds the handshake's bytes as TCP segments of `seg` bytes, in the order they were sent.
// keys_first: the keys before any packet (else after all of them). The first segment is at
// least 64 bytes (a ClientHello is recognised from its first 43 bytes, as on a real network).
// drop: (flight, segment within it) not delivered.
Result verify_stream(const Handshake& h, std::string keylog, size_t seg, bool keys_first, uint32_t source = 7,
                     std::pair<size_t, size_t> drop = {SIZE_MAX, SIZE_MAX}) {
  Result res;
  ehp::tls::KeyVerifier v({}, [&](uint32_t src, KeyCheck r, std::string_view why) {
    ++res.calls;
    res.source = src;
    res.r = r;
    res.why = why;
  });
  uint64_t ts = 1'000'000'000;
  if (keys_first) v.on_keys(h.client_random, keylog, source, ts);
  uint32_t seq[2] = {1000, 5000000};
  size_t flight = 0;
  for (auto& [from_client, bytes] : h.flights) {
    size_t k = 0;
    for (size_t off = 0, len = 0; off < bytes.size(); off += len, ++k) {
      len = std::min(flight == 0 && off == 0 ? std::max<size_t>(seg, 64) : seg, bytes.size() - off);
      ehp::net::FrameInfo fi;
      fi.ip_version = 4;
      fi.l4_proto = 6;
      const uint8_t a[4] = {10, 0, 0, 1}, b[4] = {10, 0, 0, 2};
      memcpy(fi.src.data(), from_client ? a : b, 4);
      memcpy(fi.dst.data(), from_client ? b : a, 4);
      fi.sport = from_client ? 40000 : 443;
      fi.dport = from_client ? 443 : 40000;
      fi.tcp_seq = seq[from_client];
      seq[from_client] += uint32_t(len);
      std::span<const uint8_t> payload(bytes.data() + off, len);
      if (drop == std::make_pair(flight, k)) continue;
      v.on_segment(fi, payload, ehp::net::classify_tls(payload), ts += 1000);
    }
    ++flight;
  }
  if (!keys_first) v.on_keys(h.client_random, keylog, source, ts += 1000);
  v.finish();
  return res;
}

// Flips one hex digit of the named line's secret.
std::string corrupt(std::string keylog, const std::string& label) {
  size_t p = keylog.find(label + " ");
  EXPECT_NE(p, std::string::npos);
  size_t s = keylog.find(' ', p + label.size() + 1) + 1 + 4;
  keylog[s] = keylog[s] == '0' ? '1' : '0';
  return keylog;
}

struct Case {
  const char* name;
  Opts o;
  uint16_t suite;
};

class KeyVerifierReal : public ::testing::TestWithParam<Case> {};

TEST_P(KeyVerifierReal, VerifiesRealKeysAndFailsWrongOnes) {
  const Case& c = GetParam();
  auto h = run_handshake(c.o);
  ASSERT_TRUE(h) << "handshake failed";
  ASSERT_EQ(h->suite, c.suite);
  const bool tls13 = c.o.version == TLS1_3_VERSION;
  if (c.o.force_hrr) {  // the server's first hello really is a HelloRetryRequest
    ehp::net::TlsHello first = ehp::net::classify_tls(h->s2c);
    ASSERT_TRUE(ehp::net::is_hello_retry_request(first));
  }
  const std::string label = tls13 ? "SERVER_HANDSHAKE_TRAFFIC_SECRET" : "CLIENT_RANDOM";
  ASSERT_FALSE(secret_of(h->keylog, label).empty()) << h->keylog;

  // Whole flights, small segments, one-byte segments; keys before and after the packets.
  for (size_t seg : {size_t(65535), size_t(100), size_t(7), size_t(1)}) {
    for (bool keys_first : {false, true}) {
      Result r = verify_stream(*h, h->keylog, seg, keys_first);
      EXPECT_EQ(r.calls, 1) << "seg " << seg;
      EXPECT_EQ(r.r, KeyCheck::Verified) << "seg " << seg << " keys_first " << keys_first << ": " << r.why;
      EXPECT_EQ(r.source, 7u);
    }
  }
  // One flipped hex digit of the secret: caught.
  Result bad = verify_stream(*h, corrupt(h->keylog, label), 100, false);
  EXPECT_EQ(bad.calls, 1);
  EXPECT_EQ(bad.r, KeyCheck::Failed) << bad.why;
  EXPECT_NE(bad.why.find("AEAD tag"), std::string::npos) << bad.why;
  // A secret of another label changed does not matter to the check (it is not the one proven).
  if (tls13) {
    Result other = verify_stream(*h, corrupt(h->keylog, "CLIENT_TRAFFIC_SECRET_0"), 100, false);
    EXPECT_EQ(other.r, KeyCheck::Verified) << other.why;
  }
  // A lost segment of the handshake: unverifiable, not failed.
  // TLS 1.3: the second segment of the server's flight with the ServerHello; TLS 1.2: the first
  // of the client's second flight (ClientKeyExchange, ChangeCipherSpec, Finished).
  std::pair<size_t, size_t> drop{SIZE_MAX, 0};
  size_t client_flights = 0;
  for (size_t i = 0; i < h->flights.size() && drop.first == SIZE_MAX; ++i) {
    const auto& [fc, b] = h->flights[i];
    if (tls13 && !fc && b.size() > 200) drop = {i, 1};
    if (!tls13 && fc && ++client_flights == 2) drop = {i, 0};
  }
  ASSERT_NE(drop.first, SIZE_MAX);
  Result lost = verify_stream(*h, h->keylog, 100, false, 7, drop);
  EXPECT_EQ(lost.calls, 1);
  EXPECT_EQ(lost.r, KeyCheck::Unverifiable) << lost.why;
}

TEST_P(KeyVerifierReal, FlippedRecordByteFails) {
  const Case& c = GetParam();
  auto h = run_handshake(c.o);
  ASSERT_TRUE(h);
  const bool tls13 = c.o.version == TLS1_3_VERSION;
  // Find the record the check uses and flip one ciphertext byte in the captured bytes.
  auto& bytes = tls13 ? h->s2c : h->c2s;
  size_t p = 0;
  bool after = false;
  size_t target = SIZE_MAX;
  bool seen_sh = false;
  while (p + 5 <= bytes.size()) {
    const size_t len = size_t(bytes[p + 3]) << 8 | bytes[p + 4];
    if (tls13) {
      if (bytes[p] == 22 && bytes[p + 5] == 2) seen_sh = true;
      if (seen_sh && bytes[p] == 23) {
        target = p;
        break;
      }
    } else {
      if (after) {
        target = p;
        break;
      }
      if (bytes[p] == 20) after = true;
    }
    p += 5 + len;
  }
  ASSERT_NE(target, SIZE_MAX);
  std::vector<uint8_t> record(bytes.begin() + target, bytes.begin() + target + 5 + (bytes[target + 3] << 8 | bytes[target + 4]));
  std::string why;
  // Direct check of the pure function first: the record verifies as captured.
  const auto secret = secret_of(h->keylog, tls13 ? "SERVER_HANDSHAKE_TRAFFIC_SECRET" : "CLIENT_RANDOM");
  std::array<uint8_t, 32> sr{};
  {
    // server random: bytes 11..43 of the first server record (skipping an HRR is not needed here)
    ASSERT_GE(h->s2c.size(), 43u);
    memcpy(sr.data(), h->s2c.data() + 11, 32);
  }
  auto check = [&](const std::vector<uint8_t>& rec) {
    return tls13 ? ehp::tls::check_tls13_record(h->suite, secret, rec, 0, &why)
                 : ehp::tls::check_tls12_record(h->suite, secret, h->client_random, sr, rec, true, 0, &why);
  };
  EXPECT_EQ(check(record), KeyCheck::Verified) << why;
  for (size_t i : {size_t(5), record.size() / 2, record.size() - 1}) {
    auto r2 = record;
    r2[i] ^= 0x01;
    EXPECT_EQ(check(r2), KeyCheck::Failed) << "byte " << i;
  }
  // Wrong sequence number / wrong direction: also fails.
  EXPECT_EQ(tls13 ? ehp::tls::check_tls13_record(h->suite, secret, record, 1, &why)
                  : ehp::tls::check_tls12_record(h->suite, secret, h->client_random, sr, record, false, 0, &why),
            KeyCheck::Failed);
  // The same flip on the captured stream: the session fails.
  auto h2 = *h;
  size_t flat = 0;
  bool flipped = false;
  for (auto& [fc, b] : h2.flights) {
    if (fc != !tls13) continue;  // TLS 1.3: the server's bytes; TLS 1.2: the client's
    const size_t at = target + 6;
    if (at >= flat && at < flat + b.size()) {
      b[at - flat] ^= 0x80;
      flipped = true;
      break;
    }
    flat += b.size();
  }
  ASSERT_TRUE(flipped);
  Result r = verify_stream(h2, h2.keylog, 100, false);
  EXPECT_EQ(r.r, KeyCheck::Failed) << r.why;
}

INSTANTIATE_TEST_SUITE_P(
    Suites, KeyVerifierReal,
    ::testing::Values(Case{"tls13_aes128gcm", {TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256"}, 0x1301},
                      Case{"tls13_aes256gcm", {TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384"}, 0x1302},
                      Case{"tls13_chacha", {TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256"}, 0x1303},
                      Case{"tls13_hrr", {TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", nullptr, true}, 0x1301},
                      Case{"tls12_aes128gcm", {TLS1_2_VERSION, nullptr, "ECDHE-ECDSA-AES128-GCM-SHA256"}, 0xC02B},
                      Case{"tls12_aes256gcm", {TLS1_2_VERSION, nullptr, "ECDHE-ECDSA-AES256-GCM-SHA384"}, 0xC02C},
                      Case{"tls12_chacha", {TLS1_2_VERSION, nullptr, "ECDHE-ECDSA-CHACHA20-POLY1305"}, 0xCCA9}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(KeyVerifier, CbcSuiteIsUnverifiableNotFailed) {
  auto h = run_handshake({TLS1_2_VERSION, nullptr, "ECDHE-ECDSA-AES128-SHA256"});
  ASSERT_TRUE(h);
  EXPECT_EQ(h->suite, 0xC023);
  Result r = verify_stream(*h, h->keylog, 100, false);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.r, KeyCheck::Unverifiable);
  EXPECT_NE(r.why.find("0xc023"), std::string::npos) << r.why;
  // Even with a wrong secret: nothing is claimed.
  Result bad = verify_stream(*h, corrupt(h->keylog, "CLIENT_RANDOM"), 100, false);
  EXPECT_EQ(bad.r, KeyCheck::Unverifiable);
}

// Keys of a session that never showed on the capture (TLS on another interface) are not
// checked: counted apart, not as unverifiable, which would hide a real capture problem among them.
TEST(KeyVerifier, KeysWithoutPacketsAreNotCapturedAtExpiry) {
  auto h = run_handshake({TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256"});
  ASSERT_TRUE(h);
  Result res;
  ehp::tls::KeyVerifier v({}, [&](uint32_t, KeyCheck r, std::string_view why) {
    ++res.calls;
    res.r = r;
    res.why = why;
  });
  v.on_keys(h->client_random, h->keylog, 3, 0);
  v.tick(5'000'000'000);  // first clock: starts the age
  EXPECT_EQ(res.calls, 0);
  v.tick(5'000'000'000 + 31'000'000'000ull);
  EXPECT_EQ(res.calls, 1);
  EXPECT_EQ(res.r, KeyCheck::NotCaptured);
  EXPECT_NE(res.why.find("ClientHello"), std::string::npos) << res.why;
}

// Feeds a handshake's flights as one TCP session (client port `port`, server 443), each flight
// one segment; `after` sees each segment's TLS classification once it has been fed.
void feed_flights(ehp::tls::KeyVerifier& v, const Handshake& h, uint16_t port,
                  const std::function<void(const ehp::net::TlsHello&)>& after = {}) {
  uint32_t seq[2] = {1, 1};
  for (auto& [from_client, bytes] : h.flights) {
    ehp::net::FrameInfo fi;
    fi.ip_version = 4;
    fi.l4_proto = 6;
    fi.src[0] = from_client ? 1 : 2;
    fi.dst[0] = from_client ? 2 : 1;
    fi.sport = from_client ? port : 443;
    fi.dport = from_client ? 443 : port;
    fi.tcp_seq = seq[from_client];
    seq[from_client] += uint32_t(bytes.size());
    const auto hello = ehp::net::classify_tls(bytes);
    v.on_segment(fi, bytes, hello, port);
    if (after) after(hello);
  }
}

TEST(KeyVerifier, SessionsWithoutKeysAreNotCountedAndCapsHold) {
  auto h = run_handshake({TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256"});
  ASSERT_TRUE(h);
  int calls = 0;
  ehp::tls::KeyVerifierConfig cfg;
  cfg.max_sessions = 8;
  cfg.max_buffered_bytes = 64 * 1024;
  ehp::tls::KeyVerifier v(cfg, [&](uint32_t, KeyCheck, std::string_view) { ++calls; });
  // 1000 sessions' packets (different client ports), none keyed: bounded, nothing reported.
  for (uint16_t port = 1; port <= 1000; ++port) {
    feed_flights(v, *h, port);
    EXPECT_LE(v.stats().sessions_now, 8u);
    EXPECT_LE(v.stats().buffered_bytes, 64u * 1024);
  }
  EXPECT_EQ(calls, 0);
  v.finish();
  EXPECT_EQ(calls, 0);
}

// The hold-back's key policy says no key can come: the session is no longer followed, so its
// packets are not buffered; a session whose keys already came is kept.
TEST(KeyVerifier, ForgetStopsFollowingAnUnkeyedSession) {
  auto h = run_handshake({TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256"});
  ASSERT_TRUE(h);
  int calls = 0;
  ehp::tls::KeyVerifier v({}, [&](uint32_t, KeyCheck, std::string_view) { ++calls; });
  auto feed_all = [&](uint16_t port, bool forget_after_hello) {
    bool first = true;
    feed_flights(v, *h, port, [&](const ehp::net::TlsHello& hello) {
      if (first && forget_after_hello) {
        ASSERT_EQ(hello.type, ehp::net::TlsHandshake::ClientHello);
        EXPECT_EQ(v.stats().sessions_now, 1u);
        v.forget(hello.random);
        EXPECT_EQ(v.stats().sessions_now, 0u);
      }
      first = false;
    });
  };
  feed_all(1000, true);
  EXPECT_EQ(v.stats().sessions_now, 0u);
  EXPECT_EQ(v.stats().buffered_bytes, 0u);
  EXPECT_EQ(v.stats().forgotten, 1u);
  // Keys first, then forget: kept and decided.
  v.on_keys(h->client_random, h->keylog, 7, 1);
  v.forget(h->client_random);
  EXPECT_EQ(v.stats().forgotten, 1u);
  feed_all(1001, false);
  v.finish();
  EXPECT_EQ(calls, 1);
}

TEST(KeyVerifier, GarbageStreamsNeverVerifyOrCrash) {
  auto h = run_handshake({TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256"});
  ASSERT_TRUE(h);
  // The real ClientHello, then random bytes from the "server": the keys can prove nothing.
  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    Handshake g = *h;
    for (auto& [fc, b] : g.flights)
      if (!fc)
        for (size_t i = (round % 2 ? 0 : 5); i < b.size(); ++i)
          if (rng() % 4 == 0) b[i] = uint8_t(rng());
    Result r = verify_stream(g, g.keylog, 1 + rng() % 300, round % 3 == 0);
    EXPECT_EQ(r.calls, 1);
    EXPECT_NE(r.r, KeyCheck::Verified);
  }
}

}  // namespace
