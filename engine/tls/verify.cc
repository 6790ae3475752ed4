// SPDX-License-Identifier: BSD-2-Clause
// The key check; see verify.h for what is checked and its bounds.
#include "tls/verify.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>

#include "tls/keys.h"

namespace ehp::tls {
namespace {

constexpr size_t kHeader = 5;
constexpr size_t kTag = 16;
constexpr size_t kMaxRecordBody = (1u << 14) + 2048;  // TLSCiphertext bound (RFC 5246 6.2.3)

enum class Aead : uint8_t { None, Aes128Gcm, Aes256Gcm, ChaCha20 };

struct SuiteInfo {
  Aead aead = Aead::None;
  size_t key_len = 0;
  size_t hash_len = 0;  // PRF / HKDF hash: 32 SHA-256, 48 SHA-384
};

SuiteInfo suite_info(uint16_t suite, bool tls13) {
  if (tls13) {
    switch (suite) {
      case 0x1301: return {Aead::Aes128Gcm, 16, 32};
      case 0x1302: return {Aead::Aes256Gcm, 32, 48};
      case 0x1303: return {Aead::ChaCha20, 32, 32};
      default: return {};
    }
  }
  switch (suite) {
    case 0x009C: case 0x009E: case 0xC02B: case 0xC02F: case 0x00A2: case 0x00A4: case 0x00A6:
      return {Aead::Aes128Gcm, 16, 32};
    case 0x009D: case 0x009F: case 0xC02C: case 0xC030: case 0x00A3: case 0x00A5: case 0x00A7:
      return {Aead::Aes256Gcm, 32, 48};
    case 0xCCA8: case 0xCCA9: case 0xCCAA:
      return {Aead::ChaCha20, 32, 32};
    default:
      return {};
  }
}

const EVP_CIPHER* evp_cipher(Aead a) {
  switch (a) {
    case Aead::Aes128Gcm: return EVP_aes_128_gcm();
    case Aead::Aes256Gcm: return EVP_aes_256_gcm();
    case Aead::ChaCha20: return EVP_chacha20_poly1305();
    default: return nullptr;
  }
}

const char* suite_phrase(uint16_t suite) {
  thread_local char buf[64];
  snprintf(buf, sizeof buf, "cipher suite 0x%04x is not one the check decrypts", suite);
  return buf;
}

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

// 1: the tag verifies; 0: it does not; -1: OpenSSL could not run the check.
int aead_open(Aead a, std::span<const uint8_t> key, const uint8_t nonce[12], std::span<const uint8_t> aad,
              std::span<const uint8_t> ct, const uint8_t tag[kTag]) {
  const EVP_CIPHER* c = evp_cipher(a);
  std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx(EVP_CIPHER_CTX_new());
  if (!c || !ctx) return -1;
  int outl = 0;
  if (EVP_DecryptInit_ex(ctx.get(), c, nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_IVLEN, 12, nullptr) != 1 ||
      EVP_CIPHER_CTX_key_length(ctx.get()) != int(key.size()) ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), nonce) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &outl, aad.data(), int(aad.size())) != 1)
    return -1;
  // The plaintext itself is not needed; decrypt in slices through a small buffer.
  uint8_t out[1024];
  for (size_t i = 0; i < ct.size(); i += sizeof out) {
    const size_t n = std::min(sizeof out, ct.size() - i);
    if (EVP_DecryptUpdate(ctx.get(), out, &outl, ct.data() + i, int(n)) != 1) return -1;
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, int(kTag), const_cast<uint8_t*>(tag)) != 1) return -1;
  const int ok = EVP_DecryptFinal_ex(ctx.get(), out, &outl);
  OPENSSL_cleanse(out, sizeof out);
  return ok > 0 ? 1 : 0;
}

KeyCheck fail(std::string* why, const char* w, KeyCheck k = KeyCheck::Unverifiable) {
  if (why) *why = w;
  return k;
}

// TLS 1.2 PRF (RFC 5246 5) with the suite's hash.
bool tls12_prf(size_t hash_len, std::span<const uint8_t> secret, std::span<const uint8_t> seed, std::span<uint8_t> out) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_TLS1_PRF, nullptr);
  if (!kdf) return false;
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (!ctx) return false;
  char* digest = const_cast<char*>(hash_len == 48 ? OSSL_DIGEST_NAME_SHA2_384 : OSSL_DIGEST_NAME_SHA2_256);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, const_cast<uint8_t*>(secret.data()), secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, const_cast<uint8_t*>(seed.data()), seed.size()),
      OSSL_PARAM_construct_end(),
  };
  const bool ok = EVP_KDF_derive(ctx, out.data(), out.size(), params) == 1;
  EVP_KDF_CTX_free(ctx);
  return ok;
}

void put_be64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = uint8_t(v);
    v >>= 8;
  }
}

uint16_t be16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

constexpr std::array<uint8_t, 32> kHrrRandom = {
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c};

}  // namespace

const char* key_check_name(KeyCheck k) {
  switch (k) {
    case KeyCheck::Verified: return "verified";
    case KeyCheck::Failed: return "failed";
    case KeyCheck::Unverifiable: return "unverifiable";
    case KeyCheck::NotCaptured: return "not captured";
  }
  return "?";
}

bool key_check_supported(uint16_t suite, bool tls13) { return suite_info(suite, tls13).aead != Aead::None; }

KeyCheck check_tls13_record(uint16_t suite, std::span<const uint8_t> secret, std::span<const uint8_t> record,
                            uint64_t seq, std::string* why) {
  const SuiteInfo si = suite_info(suite, true);
  if (si.aead == Aead::None) return fail(why, suite_phrase(suite));
  if (secret.size() != si.hash_len) return fail(why, "the secret's length does not fit the cipher suite");
  if (record.size() < kHeader + kTag + 1 || record[0] != 23 || be16(record.data() + 3) != record.size() - kHeader)
    return fail(why, "the record is not a whole TLS 1.3 encrypted record");
  uint8_t key[32], iv[12];
  if (!hkdf_expand_label(si.hash_len, secret, "key", {}, std::span<uint8_t>(key, si.key_len)) ||
      !hkdf_expand_label(si.hash_len, secret, "iv", {}, std::span<uint8_t>(iv, 12)))
    return fail(why, "key derivation failed");
  uint8_t seqb[8];
  put_be64(seqb, seq);
  for (int i = 0; i < 8; ++i) iv[4 + i] ^= seqb[i];
  const auto body = record.subspan(kHeader);
  const int r = aead_open(si.aead, std::span<const uint8_t>(key, si.key_len), iv, record.first(kHeader),
                          body.first(body.size() - kTag), body.data() + body.size() - kTag);
  OPENSSL_cleanse(key, sizeof key);
  if (r < 0) return fail(why, "OpenSSL could not run the check");
  if (r == 0) return fail(why, "the AEAD tag of the server's first encrypted record does not verify", KeyCheck::Failed);
  if (why) why->clear();
  return KeyCheck::Verified;
}

KeyCheck check_tls12_record(uint16_t suite, std::span<const uint8_t> master_secret,
                            const std::array<uint8_t, 32>& client_random, const std::array<uint8_t, 32>& server_random,
                            std::span<const uint8_t> record, bool client_write, uint64_t seq, std::string* why) {
  const SuiteInfo si = suite_info(suite, false);
  if (si.aead == Aead::None) return fail(why, suite_phrase(suite));
  if (master_secret.size() != 48) return fail(why, "the master secret is not 48 bytes");
  const bool gcm = si.aead != Aead::ChaCha20;
  const size_t fixed_iv = gcm ? 4 : 12, explicit_nonce = gcm ? 8 : 0;
  if (record.size() < kHeader + explicit_nonce + kTag || be16(record.data() + 3) != record.size() - kHeader)
    return fail(why, "the record is not a whole TLS record");
  // key_block = PRF(master, "key expansion", server_random + client_random): client MAC key,
  // server MAC key (none for AEAD), client key, server key, client IV, server IV.
  uint8_t seed[13 + 64];
  memcpy(seed, "key expansion", 13);
  memcpy(seed + 13, server_random.data(), 32);
  memcpy(seed + 45, client_random.data(), 32);
  uint8_t kb[2 * 32 + 2 * 12];
  const size_t kb_len = 2 * si.key_len + 2 * fixed_iv;
  if (!tls12_prf(si.hash_len, master_secret, seed, std::span<uint8_t>(kb, kb_len)))
    return fail(why, "key derivation failed");
  const uint8_t* key = kb + (client_write ? 0 : si.key_len);
  const uint8_t* iv = kb + 2 * si.key_len + (client_write ? 0 : fixed_iv);
  const auto body = record.subspan(kHeader);
  uint8_t nonce[12];
  uint8_t seqb[8];
  put_be64(seqb, seq);
  if (gcm) {
    memcpy(nonce, iv, 4);
    memcpy(nonce + 4, body.data(), 8);
  } else {
    memcpy(nonce, iv, 12);
    for (int i = 0; i < 8; ++i) nonce[4 + i] ^= seqb[i];
  }
  const auto ct = body.subspan(explicit_nonce, body.size() - explicit_nonce - kTag);
  // additional_data = seq_num + type + version + length (of the plaintext).
  uint8_t aad[13];
  memcpy(aad, seqb, 8);
  aad[8] = record[0];
  aad[9] = record[1];
  aad[10] = record[2];
  aad[11] = uint8_t(ct.size() >> 8);
  aad[12] = uint8_t(ct.size());
  const int r = aead_open(si.aead, std::span<const uint8_t>(key, si.key_len), nonce, aad, ct,
                          body.data() + body.size() - kTag);
  OPENSSL_cleanse(kb, sizeof kb);
  if (r < 0) return fail(why, "OpenSSL could not run the check");
  if (r == 0)
    return fail(why, client_write ? "the AEAD tag of the client's Finished record does not verify"
                                  : "the AEAD tag of the server's Finished record does not verify",
                KeyCheck::Failed);
  if (why) why->clear();
  return KeyCheck::Verified;
}

// ---- KeyVerifier ---------------------------------------------------------------------------

struct KeyVerifier::Dir {
  bool started = false, broken = false, done = false, after_ccs = false;
  uint32_t next_seq = 0;
  std::vector<uint8_t> partial;  // the record being reassembled
};

struct KeyVerifier::Session {
  uint64_t id = 0;
  uint64_t started_ns = 0;
  bool has_flow = false;  // its ClientHello was seen (else: keys only, so far)
  ehp::net::FlowKey flow{};
  std::array<uint8_t, 16> client_addr{};
  uint16_t client_port = 0;
  std::array<uint8_t, 32> client_random{}, server_random{};
  bool server_hello = false, tls13 = false;
  uint16_t suite = 0;
  Dir cli, srv;
  const char* broken_why = nullptr;
  std::vector<uint8_t> target;  // TLS 1.3: server's first encrypted record; 1.2: client's after CCS
  std::vector<uint8_t> target12_pending;  // client record after CCS, kept until the version is known
  bool keyed = false;
  uint32_t source = 0;
  std::vector<uint8_t> master;  // CLIENT_RANDOM
  std::vector<uint8_t> shts;    // SERVER_HANDSHAKE_TRAFFIC_SECRET
  size_t buffered = 0;
};

KeyVerifier::KeyVerifier(KeyVerifierConfig cfg, OnResult on_result) : cfg_(cfg), on_result_(std::move(on_result)) {
  cfg_.max_sessions = std::max<size_t>(cfg_.max_sessions, 1);
}

KeyVerifier::~KeyVerifier() {
  for (auto& [id, s] : by_id_) delete s;
}

KeyVerifier::Stats KeyVerifier::stats() const {
  Stats s = st_;
  s.sessions_now = by_id_.size();
  return s;
}

KeyVerifier::Session* KeyVerifier::find_flow(const ehp::net::FlowKey& k) {
  auto it = by_flow_.find(k);
  if (it == by_flow_.end()) return nullptr;
  auto s = by_id_.find(it->second);
  return s == by_id_.end() ? nullptr : s->second;
}

void KeyVerifier::forget(const std::array<uint8_t, 32>& client_random) {
  auto r = by_random_.find(client_random);
  if (r == by_random_.end()) return;
  auto it = by_id_.find(r->second);
  if (it == by_id_.end() || it->second->keyed) return;
  ++st_.forgotten;
  erase(r->second);
}

void KeyVerifier::erase(uint64_t id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  Session* s = it->second;
  if (s->has_flow) {
    auto f = by_flow_.find(s->flow);
    if (f != by_flow_.end() && f->second == id) by_flow_.erase(f);
  }
  auto r = by_random_.find(s->client_random);
  if (r != by_random_.end() && r->second == id) by_random_.erase(r);
  st_.buffered_bytes -= s->buffered;
  by_id_.erase(it);
  delete s;
}

void KeyVerifier::decide(Session& s, KeyCheck r, std::string_view why) {
  const uint32_t source = s.source;
  const bool keyed = s.keyed;
  erase(s.id);  // s is gone from here on
  if (keyed && on_result_) on_result_(source, r, why);
}

bool KeyVerifier::reserve(Session& s, size_t bytes) {
  if (st_.buffered_bytes + bytes > cfg_.max_buffered_bytes) return false;
  st_.buffered_bytes += bytes;
  s.buffered += bytes;
  return true;
}

KeyVerifier::Session* KeyVerifier::start_session(const ehp::net::FlowKey& k, const ehp::net::FrameInfo& fi,
                                                 const std::array<uint8_t, 32>& random, uint64_t ts_ns) {
  while (by_id_.size() >= cfg_.max_sessions && !order_.empty()) {
    const uint64_t id = order_.front().first;
    order_.pop_front();
    auto it = by_id_.find(id);
    if (it == by_id_.end()) continue;
    ++st_.dropped_cap;
    decide(*it->second, KeyCheck::Unverifiable, "too many sessions followed at once");
  }
  auto* s = new Session;
  s->id = next_id_++;
  s->started_ns = ts_ns;
  s->client_random = random;
  by_id_.emplace(s->id, s);
  by_random_[random] = s->id;
  order_.emplace_back(s->id, ts_ns);
  (void)k;
  (void)fi;
  return s;
}

void KeyVerifier::unverifiable_stream(Session& s, const char* why) {
  if (!s.broken_why) s.broken_why = why;
}

void KeyVerifier::on_segment(const ehp::net::FrameInfo& fi, std::span<const uint8_t> payload,
                             const ehp::net::TlsHello& hello, uint64_t ts_ns) {
  if (by_id_.empty() && hello.type != ehp::net::TlsHandshake::ClientHello) return;
  if (by_flow_.empty() && hello.type != ehp::net::TlsHandshake::ClientHello) return;
  const ehp::net::FlowKey k = ehp::net::flow_key(fi);
  Session* s = find_flow(k);
  if (hello.type == ehp::net::TlsHandshake::ClientHello) {
    if (s && s->client_random != hello.random) {
      // The 5-tuple carries a new session: the old one has had all its packets.
      const uint64_t old = s->id;
      if (s->keyed) try_decide(*s);
      if (auto it = by_id_.find(old); it != by_id_.end())
        decide(*it->second, KeyCheck::Unverifiable,
               it->second->broken_why ? it->second->broken_why : "its first encrypted record was not captured");
      s = nullptr;
    }
    if (!s) {
      auto r = by_random_.find(hello.random);
      if (r != by_random_.end()) {
        Session& known = *by_id_.at(r->second);
        if (known.has_flow) return;  // the same hello on another path (NAT, second interface)
        s = &known;                  // its keys came first
      } else {
        s = start_session(k, fi, hello.random, ts_ns);
        ++st_.sessions_followed;
      }
      s->has_flow = true;
      s->flow = k;
      s->client_addr = fi.src;
      s->client_port = fi.sport;
      by_flow_[k] = s->id;
    }
  }
  if (!s || payload.empty()) return;
  const bool from_client = fi.src == s->client_addr && fi.sport == s->client_port;
  const uint64_t id = s->id;
  feed(*s, from_client, fi.tcp_seq, payload);
  auto it = by_id_.find(id);
  if (it != by_id_.end()) try_decide(*it->second);
}

void KeyVerifier::feed(Session& s, bool from_client, uint32_t seq, std::span<const uint8_t> data) {
  Dir& d = from_client ? s.cli : s.srv;
  if (d.done || d.broken) return;
  if (!d.started) {
    d.started = true;
    d.next_seq = seq;
  }
  const int32_t off = int32_t(seq - d.next_seq);
  if (off > 0) {
    d.broken = true;
    unverifiable_stream(s, "a TCP segment of its handshake was not captured");
    return;
  }
  if (off < 0) {  // a retransmission, in part or whole
    const size_t old = size_t(-int64_t(off));
    if (old >= data.size()) return;
    data = data.subspan(old);
  }
  d.next_seq += uint32_t(data.size());
  auto bad_header = [&](const uint8_t* h) {
    return h[0] < 20 || h[0] > 24 || h[1] != 3 || be16(h + 3) > kMaxRecordBody;
  };
  while (!data.empty() && !d.done && !d.broken) {
    if (!d.partial.empty()) {
      size_t want = kHeader;
      if (d.partial.size() >= kHeader) want = kHeader + be16(d.partial.data() + 3);
      const size_t take = std::min(want - d.partial.size(), data.size());
      if (!reserve(s, take)) {
        d.broken = true;
        unverifiable_stream(s, "the key check's buffer cap was reached");
        ++st_.dropped_cap;
        return;
      }
      d.partial.insert(d.partial.end(), data.begin(), data.begin() + take);
      data = data.subspan(take);
      if (d.partial.size() == kHeader && bad_header(d.partial.data())) {
        d.broken = true;
        unverifiable_stream(s, "its TCP stream is not a TLS record stream");
        return;
      }
      if (d.partial.size() >= kHeader && d.partial.size() == kHeader + be16(d.partial.data() + 3)) {
        std::vector<uint8_t> rec;
        rec.swap(d.partial);
        st_.buffered_bytes -= rec.size();
        s.buffered -= rec.size();
        on_record(s, from_client, rec);
      }
      continue;
    }
    if (data.size() >= kHeader) {
      if (bad_header(data.data())) {
        d.broken = true;
        unverifiable_stream(s, "its TCP stream is not a TLS record stream");
        return;
      }
      const size_t len = kHeader + be16(data.data() + 3);
      if (data.size() >= len) {
        on_record(s, from_client, data.first(len));
        data = data.subspan(len);
        continue;
      }
    }
    if (!reserve(s, data.size())) {
      d.broken = true;
      unverifiable_stream(s, "the key check's buffer cap was reached");
      ++st_.dropped_cap;
      return;
    }
    d.partial.assign(data.begin(), data.end());
    data = {};
  }
}

void KeyVerifier::on_record(Session& s, bool from_client, std::span<const uint8_t> rec) {
  const uint8_t type = rec[0];
  auto keep = [&](std::vector<uint8_t>& dst) {
    if (!reserve(s, rec.size())) {
      ++st_.dropped_cap;
      unverifiable_stream(s, "the key check's buffer cap was reached");
      return;
    }
    dst.assign(rec.begin(), rec.end());
  };
  if (!from_client) {
    Dir& d = s.srv;
    if (!s.server_hello) {
      if (type == 20) return;  // a ChangeCipherSpec (after a HelloRetryRequest)
      // ServerHello: msg_type 2, length(3), legacy_version(2), random(32), session_id<0..32>,
      // cipher_suite(2), compression(1), extensions<0..2^16-1>; all within this record.
      const std::span<const uint8_t> b = rec.subspan(kHeader);
      if (type != 22 || b.size() < 4 + 2 + 32 + 1 || b[0] != 2) {
        d.broken = true;
        unverifiable_stream(s, "the server's first record is not a ServerHello");
        return;
      }
      const size_t msg_end = 4 + (size_t(b[1]) << 16 | size_t(b[2]) << 8 | b[3]);
      const size_t end = std::min(msg_end, b.size());
      size_t p = 4 + 2;
      std::array<uint8_t, 32> sr;
      memcpy(sr.data(), b.data() + p, 32);
      p += 32;
      const size_t sid = b[p++];
      if (p + sid + 3 > end) {
        d.broken = true;
        unverifiable_stream(s, "the ServerHello is not whole in its record");
        return;
      }
      p += sid;
      const uint16_t suite = be16(b.data() + p);
      p += 3;
      bool tls13 = false;
      if (p + 2 <= end) {
        const size_t ext_end = std::min(end, p + 2 + be16(b.data() + p));
        p += 2;
        while (p + 4 <= ext_end) {
          const uint16_t et = be16(b.data() + p), el = be16(b.data() + p + 2);
          p += 4;
          if (p + el > ext_end) break;
          if (et == 43 && el == 2 && be16(b.data() + p) == 0x0304) tls13 = true;  // supported_versions
          p += el;
        }
      }
      if (sr == kHrrRandom) return;  // a HelloRetryRequest: the real ServerHello follows
      s.server_hello = true;
      s.server_random = sr;
      s.suite = suite;
      s.tls13 = tls13;
      if (!tls13) {
        d.done = true;  // TLS 1.2: the client's Finished is checked
        if (!s.target12_pending.empty()) s.target.swap(s.target12_pending);
      } else {
        s.cli.done = true;  // TLS 1.3: the server's first encrypted record is checked
        const size_t freed = s.cli.partial.size() + s.target12_pending.size();
        st_.buffered_bytes -= freed;
        s.buffered -= freed;
        s.cli.partial.clear();
        s.cli.partial.shrink_to_fit();
        s.target12_pending.clear();
        s.target12_pending.shrink_to_fit();
      }
      return;
    }
    if (!s.tls13) return;
    if (type == 20) return;  // middlebox-compatibility ChangeCipherSpec
    if (type != 23) {
      d.broken = true;
      unverifiable_stream(s, "the server's record after its ServerHello is not encrypted");
      return;
    }
    keep(s.target);
    d.done = true;
    return;
  }
  Dir& d = s.cli;
  if (!d.after_ccs) {
    if (type == 20) d.after_ccs = true;
    return;
  }
  d.done = true;
  if (s.server_hello && !s.tls13) keep(s.target);
  else if (!s.server_hello) keep(s.target12_pending);
}

void KeyVerifier::try_decide(Session& s) {
  if (!s.keyed || !s.has_flow) return;
  if (!s.server_hello) {
    if (s.srv.broken) decide(s, KeyCheck::Unverifiable, s.broken_why ? s.broken_why : "no ServerHello");
    return;
  }
  if (s.tls13 ? s.shts.empty() : s.master.empty()) {
    decide(s, KeyCheck::Unverifiable,
           s.tls13 ? "TLS 1.3 session without a SERVER_HANDSHAKE_TRAFFIC_SECRET line"
                   : "TLS 1.2 session without a CLIENT_RANDOM line");
    return;
  }
  if (!key_check_supported(s.suite, s.tls13)) {
    decide(s, KeyCheck::Unverifiable, suite_phrase(s.suite));
    return;
  }
  if (s.target.empty()) {
    const Dir& d = s.tls13 ? s.srv : s.cli;
    if (d.broken || (d.done && s.target.empty()))
      decide(s, KeyCheck::Unverifiable, s.broken_why ? s.broken_why : "its first encrypted record was not kept");
    return;
  }
  std::string why;
  const KeyCheck r = s.tls13 ? check_tls13_record(s.suite, s.shts, s.target, 0, &why)
                             : check_tls12_record(s.suite, s.master, s.client_random, s.server_random, s.target,
                                                  true, 0, &why);
  decide(s, r, why);
}

void KeyVerifier::on_keys(const std::array<uint8_t, 32>& client_random, std::string_view lines, uint32_t source,
                          uint64_t now_ns) {
  std::vector<uint8_t> master, shts;
  while (!lines.empty()) {
    const size_t nl = lines.find('\n');
    const std::string_view line = lines.substr(0, nl);
    lines = nl == std::string_view::npos ? std::string_view{} : lines.substr(nl + 1);
    auto e = parse_keylog_line(line);
    if (!e || e->client_random != client_random) continue;
    if (e->label == "CLIENT_RANDOM") master = std::move(e->secret);
    else if (e->label == "SERVER_HANDSHAKE_TRAFFIC_SECRET") shts = std::move(e->secret);
  }
  Session* s = nullptr;
  if (auto r = by_random_.find(client_random); r != by_random_.end()) s = by_id_.at(r->second);
  if (master.empty() && shts.empty()) {
    if (s) erase(s->id);
    if (on_result_)
      on_result_(source, KeyCheck::Unverifiable, "its keys carry no CLIENT_RANDOM or SERVER_HANDSHAKE_TRAFFIC_SECRET");
    return;
  }
  if (s && s->keyed) return;  // keys for it came already
  if (!s) {
    ehp::net::FrameInfo none;
    s = start_session({}, none, client_random, now_ns);
  }
  s->keyed = true;
  s->source = source;
  s->master = std::move(master);
  s->shts = std::move(shts);
  try_decide(*s);
}

void KeyVerifier::tick(uint64_t now_ns) {
  if (now_ns == 0) return;
  while (!order_.empty()) {
    auto [id, at] = order_.front();
    auto it = by_id_.find(id);
    if (it == by_id_.end()) {
      order_.pop_front();
      continue;
    }
    if (at == 0) {  // keys before any clock: start counting now
      order_.pop_front();
      order_.emplace_back(id, now_ns);
      if (order_.front().first == id) break;
      continue;
    }
    if (at + cfg_.max_age_ns > now_ns) break;
    order_.pop_front();
    Session& s = *it->second;
    if (!s.has_flow) decide(s, KeyCheck::NotCaptured, "its ClientHello was not captured");
    else decide(s, KeyCheck::Unverifiable, s.broken_why ? s.broken_why : "its first encrypted record was not captured in time");
  }
}

void KeyVerifier::finish() {
  while (!order_.empty()) {
    const uint64_t id = order_.front().first;
    order_.pop_front();
    auto it = by_id_.find(id);
    if (it == by_id_.end()) continue;
    Session& s = *it->second;
    if (!s.has_flow) decide(s, KeyCheck::NotCaptured, "its ClientHello was not captured");
    else decide(s, KeyCheck::Unverifiable, s.broken_why ? s.broken_why : "the capture ended before its first encrypted record");
  }
}

}  // namespace ehp::tls
