// SPDX-License-Identifier: BSD-2-Clause
// engine/tls/assembler: secrets logged one by one (OpenSSL's ssl_log_secret) become one
// session's key log lines only when the session can be decrypted.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "tls/assembler.h"
#include "tls/keys.h"

using ehp::tls::KeylogAssembler;

namespace {
std::array<uint8_t, 32> cr(uint8_t v) {
  std::array<uint8_t, 32> r{};
  r.fill(v);
  return r;
}
std::vector<uint8_t> secret(uint8_t v, size_t n = 32) { return std::vector<uint8_t>(n, v); }
}  // namespace

TEST(KeylogAssembler, Tls12IsOneLine) {
  KeylogAssembler a;
  auto s = a.add("CLIENT_RANDOM", cr(1), secret(0xab, 48), 0);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->version, ehp::tls::kTls12);
  std::string want = "CLIENT_RANDOM ";
  for (int i = 0; i < 32; ++i) want += "01";
  want += " ";
  for (int i = 0; i < 48; ++i) want += "ab";
  EXPECT_EQ(s->logged, want + "\n");
  // keylog_lines() hands the logged lines on unchanged.
  EXPECT_EQ(ehp::tls::keylog_lines(*s), s->logged);
}

TEST(KeylogAssembler, Tls13WaitsForAllFourTrafficSecrets) {
  KeylogAssembler a;
  EXPECT_FALSE(a.add("CLIENT_HANDSHAKE_TRAFFIC_SECRET", cr(2), secret(1), 0));
  EXPECT_FALSE(a.add("SERVER_HANDSHAKE_TRAFFIC_SECRET", cr(2), secret(2), 0));
  EXPECT_FALSE(a.add("EXPORTER_SECRET", cr(2), secret(5), 0));  // before the last two: kept
  EXPECT_FALSE(a.add("SERVER_TRAFFIC_SECRET_0", cr(2), secret(4), 0));
  EXPECT_EQ(a.waiting(), 1u);
  auto s = a.add("CLIENT_TRAFFIC_SECRET_0", cr(2), secret(3), 0);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->version, ehp::tls::kTls13);
  for (const char* l : {"CLIENT_HANDSHAKE_TRAFFIC_SECRET ", "SERVER_HANDSHAKE_TRAFFIC_SECRET ",
                        "CLIENT_TRAFFIC_SECRET_0 ", "SERVER_TRAFFIC_SECRET_0 ", "EXPORTER_SECRET "})
    EXPECT_NE(s->logged.find(l), std::string::npos) << l;
  EXPECT_EQ(std::count(s->logged.begin(), s->logged.end(), '\n'), 5);
  EXPECT_EQ(a.waiting(), 0u);
  // An exporter secret after its session completed has nothing to join.
  EXPECT_FALSE(a.add("EXPORTER_SECRET", cr(2), secret(5), 0));
  EXPECT_EQ(a.ignored(), 1u);
}

// BoringSSL logs the exporter secret right after the traffic secrets: it joins its session.
TEST(KeylogAssembler, ExporterAfterTheTrafficSecretsJoins) {
  KeylogAssembler a(16, 1'000'000'000ull, 5'000'000ull);
  a.add("CLIENT_HANDSHAKE_TRAFFIC_SECRET", cr(6), secret(1), 100);
  a.add("SERVER_HANDSHAKE_TRAFFIC_SECRET", cr(6), secret(2), 100);
  a.add("CLIENT_TRAFFIC_SECRET_0", cr(6), secret(3), 100);
  EXPECT_FALSE(a.add("SERVER_TRAFFIC_SECRET_0", cr(6), secret(4), 100)) << "waits a moment for the exporter";
  std::vector<ehp::tls::Secrets> out;
  a.flush(1'000'000, &out);
  EXPECT_TRUE(out.empty()) << "still within the wait";
  auto s = a.add("EXPORTER_SECRET", cr(6), secret(5), 200);
  ASSERT_TRUE(s);
  EXPECT_EQ(std::count(s->logged.begin(), s->logged.end(), '\n'), 5);
  EXPECT_EQ(a.waiting(), 0u);
  // Without an exporter secret the session goes on after the wait, with its four lines.
  a.add("CLIENT_HANDSHAKE_TRAFFIC_SECRET", cr(7), secret(1), 100);
  a.add("SERVER_HANDSHAKE_TRAFFIC_SECRET", cr(7), secret(2), 100);
  a.add("CLIENT_TRAFFIC_SECRET_0", cr(7), secret(3), 100);
  a.add("SERVER_TRAFFIC_SECRET_0", cr(7), secret(4), 100);
  a.flush(100 + 5'000'000, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].client_random, cr(7));
  EXPECT_EQ(std::count(out[0].logged.begin(), out[0].logged.end(), '\n'), 4);
  EXPECT_EQ(a.waiting(), 0u);
}

TEST(KeylogAssembler, SessionsDoNotMix) {
  KeylogAssembler a;
  a.add("CLIENT_HANDSHAKE_TRAFFIC_SECRET", cr(3), secret(1), 0);
  a.add("EXPORTER_SECRET", cr(3), secret(1), 0);  // first: OpenSSL's order
  a.add("SERVER_HANDSHAKE_TRAFFIC_SECRET", cr(4), secret(1), 0);
  a.add("CLIENT_TRAFFIC_SECRET_0", cr(3), secret(1), 0);
  a.add("SERVER_TRAFFIC_SECRET_0", cr(3), secret(1), 0);
  EXPECT_FALSE(a.add("SERVER_HANDSHAKE_TRAFFIC_SECRET", cr(5), secret(1), 0));
  auto s = a.add("SERVER_HANDSHAKE_TRAFFIC_SECRET", cr(3), secret(1), 0);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->client_random, cr(3));
  EXPECT_EQ(a.waiting(), 2u);  // cr 4 and 5 still incomplete
}

TEST(KeylogAssembler, IncompleteSessionsAreBoundedAndExpire) {
  KeylogAssembler a(2, 1000);
  a.add("CLIENT_HANDSHAKE_TRAFFIC_SECRET", cr(1), secret(1), 0);
  a.add("CLIENT_HANDSHAKE_TRAFFIC_SECRET", cr(2), secret(1), 10);
  a.add("CLIENT_HANDSHAKE_TRAFFIC_SECRET", cr(3), secret(1), 20);  // full: the oldest goes
  EXPECT_EQ(a.waiting(), 2u);
  EXPECT_EQ(a.incomplete_dropped(), 1u);
  EXPECT_EQ(a.expire(500), 0u);
  EXPECT_EQ(a.expire(1015), 1u);  // cr 2 (10 + 1000 < 1015); cr 3 still young
  EXPECT_EQ(a.waiting(), 1u);
  EXPECT_EQ(a.incomplete_dropped(), 2u);
}

TEST(KeylogAssembler, UnusableInputIgnored) {
  KeylogAssembler a;
  EXPECT_FALSE(a.add("SOMETHING_ELSE", cr(1), secret(1), 0));
  EXPECT_FALSE(a.add("CLIENT_RANDOM", cr(0), secret(1, 48), 0));       // zero client random
  EXPECT_FALSE(a.add("CLIENT_RANDOM", cr(1), secret(0, 48), 0));       // zero secret
  EXPECT_FALSE(a.add("CLIENT_RANDOM", cr(1), std::vector<uint8_t>{}, 0));  // empty
  EXPECT_EQ(a.ignored(), 4u);
}
