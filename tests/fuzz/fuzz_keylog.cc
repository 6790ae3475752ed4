// SPDX-License-Identifier: BSD-2-Clause
// libFuzzer target: NSS key log lines (engine/tls/keys.h).
//
// Input byte 0 picks the mode:
//   even: the rest is one line for parse_keylog_line. Both overloads must agree; a refusal
//         comes with a non-empty reason; an accepted entry has a known label and a secret of a
//         legal length, and printed back as "<label> <hex cr> <hex secret>" parses to itself.
//   odd:  the rest fills a Secrets struct (version and cipher chosen from the interesting
//         values by the first bytes). keylog_lines and keylog_lines_to must produce the same
//         bytes, at most kMaxKeylogBytes, '\n'-terminated lines, each of which parses back with
//         the session's client_random and the expected label order and secret bytes
//         (master_key for TLS 1.2; the app traffic and exporter secrets for TLS 1.3).
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "tls/keys.h"
#include "fuzz_util.h"

namespace {

using ehp::fuzz::fail;
using ehp::fuzz::hex;
namespace tls = ehp::tls;

constexpr const char* kT = "fuzz_keylog";

void check_line(std::string_view line) {
  const std::string owned(line);  // exact-size heap copy so overreads are caught
  std::string err = "unset";
  auto a = tls::parse_keylog_line(owned, &err);
  auto b = tls::parse_keylog_line(owned);
  if (a.has_value() != b.has_value()) fail(kT, "the two parse_keylog_line overloads disagree");
  if (!a) {
    if (err.empty() || err == "unset") fail(kT, "refusal without a reason");
    return;
  }
  if (!err.empty()) fail(kT, "accepted line but error text set: " + err);
  const size_t n = a->secret.size();
  const bool tls12 = a->label == "CLIENT_RANDOM";
  if (tls12 ? n != 48 : (n != 32 && n != 48)) fail(kT, "secret length " + std::to_string(n) + " for " + a->label);
  const std::string again =
      a->label + " " + hex(a->client_random.data(), 32) + " " + hex(a->secret.data(), n);
  auto c = tls::parse_keylog_line(again);
  if (!c) fail(kT, "canonical form of an accepted line refused: " + again);
  if (c->label != a->label || c->client_random != a->client_random || c->secret != a->secret)
    fail(kT, "canonical form parses to a different entry");
}

void check_secrets(const uint8_t* data, size_t size) {
  tls::Secrets s;
  if (size < 2) return;
  static constexpr uint16_t kVersions[] = {tls::kTls12, tls::kTls13, 0x0301, 0x0302, 0x0300, 0x0305};
  static constexpr uint16_t kCiphers[] = {0x1301, 0x1302, 0x1303, 0x1304, 0x1305, 0xc02f, 0x0000};
  s.version = (data[0] & 0x80) ? static_cast<uint16_t>(data[0] << 8 | data[1])
                               : kVersions[data[0] % std::size(kVersions)];
  s.cipher_id = kCiphers[data[1] % std::size(kCiphers)];
  data += 2;
  size -= 2;
  // Fill the byte arrays from the input; missing bytes repeat it (all-zero only if it is).
  auto fill = [&](uint8_t* dst, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] = size ? data[i % size] : 0;
    if (size > n) {
      data += n;
      size -= n;
    }
  };
  fill(s.client_random.data(), 32);
  fill(s.master_key.data(), 48);
  fill(s.handshake_secret.data(), 64);
  fill(s.handshake_traffic_hash.data(), 64);
  fill(s.client_app_traffic_secret.data(), 64);
  fill(s.server_app_traffic_secret.data(), 64);
  fill(s.exporter_master_secret.data(), 64);

  const std::string text = tls::keylog_lines(s);
  std::vector<char> buf(tls::kMaxKeylogBytes);
  const size_t n = tls::keylog_lines_to(s, buf);
  if (n != text.size() || std::memcmp(buf.data(), text.data(), n) != 0)
    fail(kT, "keylog_lines and keylog_lines_to differ");
  if (n > tls::kMaxKeylogBytes) fail(kT, "output longer than kMaxKeylogBytes");
  if (text.empty()) return;
  if (text.back() != '\n') fail(kT, "output not newline-terminated");

  std::vector<tls::KeylogEntry> entries;
  size_t start = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    auto e = tls::parse_keylog_line(std::string_view(text).substr(start, nl + 1 - start));
    if (!e) fail(kT, "emitted line does not parse: " + text.substr(start, nl - start));
    if (e->client_random != s.client_random) fail(kT, "emitted line has another client_random");
    entries.push_back(std::move(*e));
    start = nl + 1;
  }
  auto same = [](const std::vector<uint8_t>& v, const uint8_t* p) { return std::memcmp(v.data(), p, v.size()) == 0; };
  if (s.version >= 0x0301 && s.version <= tls::kTls12) {
    if (entries.size() != 1 || entries[0].label != "CLIENT_RANDOM" || !same(entries[0].secret, s.master_key.data()))
      fail(kT, "TLS 1.2 output is not one CLIENT_RANDOM line with the master key");
    return;
  }
  if (s.version != tls::kTls13) fail(kT, "output for an unsupported version");
  const size_t hl = tls::tls13_hash_len(s.cipher_id);
  static constexpr std::string_view kOrder[] = {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                                                "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0",
                                                "EXPORTER_SECRET"};
  if (hl == 0 || entries.size() != 5) fail(kT, "TLS 1.3 output is not 5 lines");
  for (size_t i = 0; i < 5; ++i) {
    if (entries[i].label != kOrder[i]) fail(kT, "TLS 1.3 label order");
    if (entries[i].secret.size() != hl) fail(kT, "TLS 1.3 secret length differs from the suite's hash");
  }
  if (!same(entries[2].secret, s.client_app_traffic_secret.data()) ||
      !same(entries[3].secret, s.server_app_traffic_secret.data()) ||
      !same(entries[4].secret, s.exporter_master_secret.data()))
    fail(kT, "TLS 1.3 traffic/exporter secret differs from the input");
  // The handshake secrets are derived: recompute them independently through the public API.
  std::array<uint8_t, 48> want{};
  if (!tls::hkdf_expand_label(hl, std::span(s.handshake_secret.data(), hl), "c hs traffic",
                              std::span(s.handshake_traffic_hash.data(), hl), std::span(want.data(), hl)) ||
      !same(entries[0].secret, want.data()))
    fail(kT, "CLIENT_HANDSHAKE_TRAFFIC_SECRET is not HKDF-Expand-Label(hs, \"c hs traffic\", th)");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  if ((data[0] & 1) == 0) {
    check_line(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  } else {
    check_secrets(data + 1, size - 1);
  }
  return 0;
}
