// SPDX-License-Identifier: BSD-2-Clause
// TLS key schedule pieces (RFC 8446 7.1) and NSS key log lines.
#include "tls/keys.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>

namespace ehp::tls {

namespace {

// One HKDF context per digest and thread. Fetching the EVP_KDF and the digest costs a
// provider lookup (several microseconds), so it happens once; each call then only sets the
// key and info. OpenSSL's HKDF context replaces (not appends) key and info on every
// EVP_KDF_derive with params, which is what makes the reuse safe.
class HkdfContexts {
 public:
  HkdfContexts() {
    kdf_ = EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr);
    if (!kdf_) return;
    sha256_ = make_ctx(OSSL_DIGEST_NAME_SHA2_256);
    sha384_ = make_ctx(OSSL_DIGEST_NAME_SHA2_384);
  }
  ~HkdfContexts() {
    EVP_KDF_CTX_free(sha256_);
    EVP_KDF_CTX_free(sha384_);
    EVP_KDF_free(kdf_);
  }
  HkdfContexts(const HkdfContexts&) = delete;
  HkdfContexts& operator=(const HkdfContexts&) = delete;

  EVP_KDF_CTX* for_hash_len(size_t hash_len) const {
    if (hash_len == 32) return sha256_;
    if (hash_len == 48) return sha384_;
    return nullptr;
  }

 private:
  EVP_KDF_CTX* make_ctx(const char* digest) {
    EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf_);
    if (!ctx) return nullptr;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest), 0),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_KDF_CTX_set_params(ctx, params) != 1) {
      EVP_KDF_CTX_free(ctx);
      return nullptr;
    }
    return ctx;
  }

  EVP_KDF* kdf_ = nullptr;
  EVP_KDF_CTX* sha256_ = nullptr;
  EVP_KDF_CTX* sha384_ = nullptr;
};

HkdfContexts& hkdf_contexts() {
  thread_local HkdfContexts contexts;
  return contexts;
}

constexpr char kHexDigits[] = "0123456789abcdef";

char* put_hex(char* p, const uint8_t* data, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    *p++ = kHexDigits[data[i] >> 4];
    *p++ = kHexDigits[data[i] & 0xf];
  }
  return p;
}

char* put_str(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

// One "<LABEL> <client_random hex> <secret hex>\n" line.
char* put_line(char* p, std::string_view label, const std::array<uint8_t, 32>& cr,
               const uint8_t* secret, size_t secret_len) {
  p = put_str(p, label);
  *p++ = ' ';
  p = put_hex(p, cr.data(), cr.size());
  *p++ = ' ';
  p = put_hex(p, secret, secret_len);
  *p++ = '\n';
  return p;
}

bool all_zero(const uint8_t* p, size_t len) {
  uint8_t acc = 0;
  for (size_t i = 0; i < len; ++i) acc |= p[i];
  return acc == 0;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool decode_hex(std::string_view hex, uint8_t* out) {
  for (size_t i = 0; i < hex.size() / 2; ++i) {
    int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

// Secret lengths each known NSS key log label may carry (bytes). CLIENT_RANDOM carries the
// 48-byte TLS <= 1.2 master secret; the TLS 1.3 labels carry one hash length (32 or 48).
struct LabelRule {
  std::string_view label;
  bool tls13;
};
constexpr LabelRule kLabels[] = {
    {"CLIENT_RANDOM", false},
    {"CLIENT_EARLY_TRAFFIC_SECRET", true},
    {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", true},
    {"SERVER_HANDSHAKE_TRAFFIC_SECRET", true},
    {"CLIENT_TRAFFIC_SECRET_0", true},
    {"SERVER_TRAFFIC_SECRET_0", true},
    {"EARLY_EXPORTER_SECRET", true},
    {"EXPORTER_SECRET", true},
};

}  // namespace

size_t tls13_hash_len(uint16_t cipher_id) {
  switch (cipher_id) {
    case 0x1301:  // TLS_AES_128_GCM_SHA256
    case 0x1303:  // TLS_CHACHA20_POLY1305_SHA256
    case 0x1304:  // TLS_AES_128_CCM_SHA256
    case 0x1305:  // TLS_AES_128_CCM_8_SHA256
      return 32;
    case 0x1302:  // TLS_AES_256_GCM_SHA384
      return 48;
    default:
      return 0;
  }
}

bool hkdf_expand_label(size_t hash_len, std::span<const uint8_t> secret, std::string_view label,
                       std::span<const uint8_t> context, std::span<uint8_t> out) {
  // RFC 8446 7.1: struct { uint16 length; opaque label<7..255>; opaque context<0..255>; }
  // with label = "tls13 " + Label. RFC 5869 caps the output at 255 * HashLen.
  constexpr std::string_view kPrefix = "tls13 ";
  const size_t full_label_len = kPrefix.size() + label.size();
  if (full_label_len > 255 || context.size() > 255 || out.empty() ||
      out.size() > std::min<size_t>(255 * hash_len, std::numeric_limits<uint16_t>::max()) ||
      secret.empty()) {
    return false;
  }
  EVP_KDF_CTX* ctx = hkdf_contexts().for_hash_len(hash_len);
  if (!ctx) return false;

  uint8_t info[2 + 1 + 255 + 1 + 255];
  size_t n = 0;
  info[n++] = static_cast<uint8_t>(out.size() >> 8);
  info[n++] = static_cast<uint8_t>(out.size());
  info[n++] = static_cast<uint8_t>(full_label_len);
  std::memcpy(info + n, kPrefix.data(), kPrefix.size());
  n += kPrefix.size();
  std::memcpy(info + n, label.data(), label.size());
  n += label.size();
  info[n++] = static_cast<uint8_t>(context.size());
  if (!context.empty()) std::memcpy(info + n, context.data(), context.size());
  n += context.size();

  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                        const_cast<uint8_t*>(secret.data()), secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
      OSSL_PARAM_construct_end(),
  };
  return EVP_KDF_derive(ctx, out.data(), out.size(), params) == 1;
}

size_t keylog_lines_to(const Secrets& s, std::span<char> out) {
  if (out.size() < kMaxKeylogBytes) return 0;
  if (all_zero(s.client_random.data(), s.client_random.size())) return 0;
  if (!s.logged.empty()) {  // lines the library logged itself (assembler.h)
    if (s.logged.size() > out.size()) return 0;
    std::memcpy(out.data(), s.logged.data(), s.logged.size());
    return s.logged.size();
  }
  char* const begin = out.data();
  char* p = begin;

  if (s.version >= 0x0301 && s.version <= kTls12) {
    // TLS 1.0-1.2 share the CLIENT_RANDOM <master secret> line.
    if (all_zero(s.master_key.data(), s.master_key.size())) return 0;
    p = put_line(p, "CLIENT_RANDOM", s.client_random, s.master_key.data(), s.master_key.size());
    return static_cast<size_t>(p - begin);
  }
  if (s.version != kTls13) return 0;

  const size_t hl = tls13_hash_len(s.cipher_id);
  if (hl == 0) return 0;
  // A zero secret means the uprobe read the SSL object before the key schedule filled it;
  // writing it would give Wireshark a key that decrypts nothing.
  if (all_zero(s.handshake_secret.data(), hl) || all_zero(s.handshake_traffic_hash.data(), hl) ||
      all_zero(s.client_app_traffic_secret.data(), hl) ||
      all_zero(s.server_app_traffic_secret.data(), hl) ||
      all_zero(s.exporter_master_secret.data(), hl)) {
    return 0;
  }
  // OpenSSL 3.0 keeps handshake_secret and the ClientHello..ServerHello transcript hash,
  // not the handshake traffic secrets themselves (see docs/facts.md); derive them (RFC 8446 7.1).
  uint8_t chts[48], shts[48];
  const std::span<const uint8_t> hs(s.handshake_secret.data(), hl);
  const std::span<const uint8_t> th(s.handshake_traffic_hash.data(), hl);
  if (!hkdf_expand_label(hl, hs, "c hs traffic", th, std::span<uint8_t>(chts, hl)) ||
      !hkdf_expand_label(hl, hs, "s hs traffic", th, std::span<uint8_t>(shts, hl))) {
    return 0;
  }
  p = put_line(p, "CLIENT_HANDSHAKE_TRAFFIC_SECRET", s.client_random, chts, hl);
  p = put_line(p, "SERVER_HANDSHAKE_TRAFFIC_SECRET", s.client_random, shts, hl);
  p = put_line(p, "CLIENT_TRAFFIC_SECRET_0", s.client_random, s.client_app_traffic_secret.data(),
               hl);
  p = put_line(p, "SERVER_TRAFFIC_SECRET_0", s.client_random, s.server_app_traffic_secret.data(),
               hl);
  p = put_line(p, "EXPORTER_SECRET", s.client_random, s.exporter_master_secret.data(), hl);
  return static_cast<size_t>(p - begin);
}

std::string keylog_lines(const Secrets& s) {
  char buf[kMaxKeylogBytes];
  const size_t n = keylog_lines_to(s, buf);
  return std::string(buf, n);
}

std::optional<KeylogEntry> parse_keylog_line(std::string_view line, std::string* error) {
  auto fail = [error](const char* why) -> std::optional<KeylogEntry> {
    if (error) *error = why;
    return std::nullopt;
  };
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) return fail("empty line");
  if (line.front() == '#') return fail("comment line");

  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return fail("missing field separator after label");
  const std::string_view label = line.substr(0, sp1);
  for (char c : label) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
      return fail("label has characters outside [A-Z0-9_]");
    }
  }
  const LabelRule* rule = nullptr;
  for (const LabelRule& r : kLabels) {
    if (r.label == label) rule = &r;
  }
  if (!rule) return fail("unknown key log label");

  const std::string_view rest = line.substr(sp1 + 1);
  const size_t sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos) return fail("missing field separator after client random");
  const std::string_view cr_hex = rest.substr(0, sp2);
  const std::string_view secret_hex = rest.substr(sp2 + 1);
  if (cr_hex.size() != 64) return fail("client random is not 64 hex digits");
  const bool len_ok = rule->tls13 ? (secret_hex.size() == 64 || secret_hex.size() == 96)
                                  : secret_hex.size() == 96;
  if (!len_ok) return fail("secret has the wrong number of hex digits for its label");

  KeylogEntry e;
  e.label.assign(label);
  if (!decode_hex(cr_hex, e.client_random.data())) return fail("client random is not hex");
  e.secret.resize(secret_hex.size() / 2);
  if (!decode_hex(secret_hex, e.secret.data())) return fail("secret is not hex");
  if (error) error->clear();
  return e;
}

std::optional<KeylogEntry> parse_keylog_line(std::string_view line) {
  return parse_keylog_line(line, nullptr);
}

// ---------------------------------------------------------------------------------------
// ClientRandomDedup: a FIFO ring of the last `capacity` randoms plus an open-addressing
// index (linear probing, load <= 1/2) of ring slots. Both are allocated at construction;
// insert/contains never allocate. Eviction uses backward-shift deletion, so no tombstones
// accumulate and probe lengths stay bounded however long the process runs.
struct ClientRandomDedup::Impl {
  static constexpr uint32_t kEmpty = std::numeric_limits<uint32_t>::max();

  // Ring positions are stored as uint32_t, so the capacity is clamped to 2^30.
  explicit Impl(size_t cap) : capacity(std::clamp<size_t>(cap, 1, size_t{1} << 30)) {
    size_t slots = 2;
    while (slots < capacity * 2) slots <<= 1;
    mask = slots - 1;
    ring.reset(new std::array<uint8_t, 32>[capacity]);
    index.reset(new uint32_t[slots]);
    std::fill_n(index.get(), slots, kEmpty);
    // Client randoms come from peers we don't control; a per-instance key keeps crafted
    // randoms from piling into one probe chain.
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof seed) != 1) {
      seed = reinterpret_cast<uintptr_t>(this) * 0x9e3779b97f4a7c15ull;
    }
  }

  size_t home(const std::array<uint8_t, 32>& cr) const {
    uint64_t w[4];
    std::memcpy(w, cr.data(), sizeof w);
    uint64_t h = seed;
    for (uint64_t x : w) {
      h ^= x;
      h *= 0xff51afd7ed558ccdull;
      h ^= h >> 33;
    }
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    return static_cast<size_t>(h) & mask;
  }

  // Slot in `index` holding `cr`, or the empty slot where it would go.
  size_t find(const std::array<uint8_t, 32>& cr, bool& found) const {
    size_t i = home(cr);
    while (index[i] != kEmpty) {
      if (ring[index[i]] == cr) {
        found = true;
        return i;
      }
      i = (i + 1) & mask;
    }
    found = false;
    return i;
  }

  void erase_slot(size_t hole) {
    // Backward-shift: pull later members of the probe run into the hole when their home
    // position allows it, so lookups never stop early at a gap.
    size_t j = hole;
    for (;;) {
      j = (j + 1) & mask;
      if (index[j] == kEmpty) break;
      const size_t h = home(ring[index[j]]);
      // Move index[j] into the hole unless h lies cyclically in (hole, j].
      const bool stays = (hole <= j) ? (hole < h && h <= j) : (hole < h || h <= j);
      if (!stays) {
        index[hole] = index[j];
        hole = j;
      }
    }
    index[hole] = kEmpty;
  }

  size_t capacity;
  size_t mask = 0;
  size_t head = 0;  // ring position of the oldest entry
  size_t count = 0;
  uint64_t seed = 0;
  std::unique_ptr<std::array<uint8_t, 32>[]> ring;
  std::unique_ptr<uint32_t[]> index;
};

ClientRandomDedup::ClientRandomDedup(size_t capacity) : impl_(new Impl(capacity)) {}
ClientRandomDedup::~ClientRandomDedup() { delete impl_; }

bool ClientRandomDedup::insert(const std::array<uint8_t, 32>& cr) {
  Impl& m = *impl_;
  bool found = false;
  m.find(cr, found);
  if (found) return false;
  if (m.count == m.capacity) {
    // Forget the oldest: its index slot goes, its ring slot is reused below.
    bool old_found = false;
    const size_t old_slot = m.find(m.ring[m.head], old_found);
    if (old_found) m.erase_slot(old_slot);
    m.head = (m.head + 1) % m.capacity;
    --m.count;
  }
  const size_t pos = (m.head + m.count) % m.capacity;
  m.ring[pos] = cr;
  bool dummy = false;
  const size_t slot = m.find(cr, dummy);
  m.index[slot] = static_cast<uint32_t>(pos);
  ++m.count;
  return true;
}

bool ClientRandomDedup::contains(const std::array<uint8_t, 32>& cr) const {
  bool found = false;
  impl_->find(cr, found);
  return found;
}

size_t ClientRandomDedup::size() const { return impl_->count; }
size_t ClientRandomDedup::capacity() const { return impl_->capacity; }
size_t ClientRandomDedup::memory_bytes() const {
  return sizeof(Impl) + impl_->capacity * sizeof(std::array<uint8_t, 32>) +
         (impl_->mask + 1) * sizeof(uint32_t);
}

}  // namespace ehp::tls
