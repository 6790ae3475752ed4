// Calibration handshake: proves the struct offsets against the libssl that will be traced by
// running real TLS 1.2 / 1.3 handshakes through it, in process, over a BIO pair, and reading
// the client SSL's memory at the offsets exactly as bpf/openssl.bpf.c does.
#include <dlfcn.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <sstream>

#include "correlate/tls_keys.h"
#include "tlsprobe/libssl.h"

namespace ehp::tlsprobe {
namespace {

// Self-signed P-256 certificate (CN=ehp-calibration, valid 100 years), DER.
const unsigned char kCalCert[] = {
    0x30, 0x82, 0x01, 0x8b, 0x30, 0x82, 0x01, 0x31, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x14, 0x27,
    0xd1, 0x75, 0x22, 0x4c, 0x5a, 0x43, 0xe1, 0x65, 0x63, 0x0a, 0x66, 0x74, 0x2e, 0x92, 0x7a, 0x1d,
    0xa2, 0xba, 0xb5, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x30,
    0x1a, 0x31, 0x18, 0x30, 0x16, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x0f, 0x65, 0x68, 0x70, 0x2d,
    0x63, 0x61, 0x6c, 0x69, 0x62, 0x72, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x30, 0x20, 0x17, 0x0d, 0x32,
    0x36, 0x31, 0x31, 0x32, 0x36, 0x31, 0x30, 0x31, 0x35, 0x33, 0x39, 0x5a, 0x18, 0x0f, 0x32, 0x31,
    0x32, 0x36, 0x31, 0x31, 0x30, 0x32, 0x31, 0x30, 0x31, 0x35, 0x33, 0x39, 0x5a, 0x30, 0x1a, 0x31,
    0x18, 0x30, 0x16, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x0f, 0x65, 0x68, 0x70, 0x2d, 0x63, 0x61,
    0x6c, 0x69, 0x62, 0x72, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    0x03, 0x42, 0x00, 0x04, 0x63, 0x96, 0xdd, 0xb0, 0xb6, 0x6e, 0xcd, 0x28, 0xe9, 0xe5, 0x31, 0x27,
    0x76, 0xf1, 0x67, 0x6a, 0x10, 0xf1, 0xe9, 0xda, 0x80, 0xe6, 0x97, 0x18, 0x52, 0x76, 0x85, 0x97,
    0xef, 0x74, 0x64, 0xae, 0xcb, 0x9a, 0x7f, 0x2c, 0x2c, 0x73, 0x8f, 0x3e, 0xe5, 0x4c, 0x58, 0x2c,
    0xab, 0xd0, 0x31, 0x3a, 0x3d, 0x32, 0x32, 0xb0, 0xbd, 0x10, 0xe5, 0x44, 0x10, 0x8a, 0x50, 0x12,
    0x87, 0xf8, 0x55, 0xb9, 0xa3, 0x53, 0x30, 0x51, 0x30, 0x1d, 0x06, 0x03, 0x55, 0x1d, 0x0e, 0x04,
    0x16, 0x04, 0x14, 0x17, 0xa7, 0xda, 0xb3, 0xff, 0x02, 0xde, 0x87, 0x0a, 0x97, 0x1f, 0x41, 0x49,
    0x5f, 0xe2, 0xe5, 0x79, 0xf0, 0x87, 0x46, 0x30, 0x1f, 0x06, 0x03, 0x55, 0x1d, 0x23, 0x04, 0x18,
    0x30, 0x16, 0x80, 0x14, 0x17, 0xa7, 0xda, 0xb3, 0xff, 0x02, 0xde, 0x87, 0x0a, 0x97, 0x1f, 0x41,
    0x49, 0x5f, 0xe2, 0xe5, 0x79, 0xf0, 0x87, 0x46, 0x30, 0x0f, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01,
    0x01, 0xff, 0x04, 0x05, 0x30, 0x03, 0x01, 0x01, 0xff, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x04, 0x03, 0x02, 0x03, 0x48, 0x00, 0x30, 0x45, 0x02, 0x21, 0x00, 0xca, 0x36, 0x26,
    0xe1, 0x92, 0xbc, 0xb1, 0x0d, 0xc0, 0x9b, 0x21, 0xbf, 0x47, 0x7b, 0x57, 0xfb, 0xe4, 0x27, 0x00,
    0xa0, 0xaa, 0xdd, 0x89, 0xdd, 0xc5, 0xb1, 0x68, 0x29, 0x6a, 0x67, 0xec, 0x29, 0x02, 0x20, 0x44,
    0x4c, 0xcd, 0x95, 0xfe, 0xad, 0xd6, 0x2a, 0x81, 0x9b, 0xd1, 0x7e, 0x2b, 0x6a, 0x37, 0xe4, 0xbc,
    0x8c, 0xf4, 0xab, 0xd8, 0x8b, 0xbf, 0xeb, 0xaa, 0xa8, 0xf0, 0x4a, 0x61, 0xb0, 0x38, 0x37};
// Its SEC1 EC private key, DER. Throwaway: it only ever protects an in-memory BIO pair.
const unsigned char kCalKey[] = {
    0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20, 0x79, 0xa1, 0x80, 0xa6, 0x56, 0xd8, 0xf0, 0xad, 0x1f,
    0xa9, 0xb1, 0xd2, 0x4e, 0x15, 0x50, 0x56, 0xe5, 0xd6, 0x6c, 0xad, 0xb2, 0x20, 0x23, 0xdf, 0x79,
    0x32, 0x26, 0xe7, 0xde, 0x54, 0x6d, 0xbf, 0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
    0x03, 0x01, 0x07, 0xa1, 0x44, 0x03, 0x42, 0x00, 0x04, 0x63, 0x96, 0xdd, 0xb0, 0xb6, 0x6e, 0xcd,
    0x28, 0xe9, 0xe5, 0x31, 0x27, 0x76, 0xf1, 0x67, 0x6a, 0x10, 0xf1, 0xe9, 0xda, 0x80, 0xe6, 0x97,
    0x18, 0x52, 0x76, 0x85, 0x97, 0xef, 0x74, 0x64, 0xae, 0xcb, 0x9a, 0x7f, 0x2c, 0x2c, 0x73, 0x8f,
    0x3e, 0xe5, 0x4c, 0x58, 0x2c, 0xab, 0xd0, 0x31, 0x3a, 0x3d, 0x32, 0x32, 0xb0, 0xbd, 0x10, 0xe5,
    0x44, 0x10, 0x8a, 0x50, 0x12, 0x87, 0xf8, 0x55, 0xb9};

// libssl / libcrypto ABI (stable since 1.1.0); resolved with dlsym from the library under test.
using fn_method = const void* (*)();
using fn_ctx_new = void* (*)(const void*);
using fn_free = void (*)(void*);
using fn_use_cert = int (*)(void*, int, const unsigned char*);
using fn_use_key = int (*)(int, void*, const unsigned char*, long);
using fn_keylog_cb = void (*)(const void*, const char*);
using fn_set_keylog = void (*)(void*, fn_keylog_cb);
using fn_ctx_ctrl = long (*)(void*, int, long, void*);
using fn_set_str = int (*)(void*, const char*);
using fn_ssl_new = void* (*)(void*);
using fn_set_bio = void (*)(void*, void*, void*);
using fn_void_ssl = void (*)(void*);
using fn_int_ssl = int (*)(const void*);
using fn_ptr_ssl = void* (*)(const void*);
using fn_get_error = int (*)(const void*, int);
using fn_bio_pair = int (*)(void**, size_t, void**, size_t);
using fn_bio_socket = void* (*)(int, int);

constexpr int kCtrlSetMinProto = 123, kCtrlSetMaxProto = 124;  // SSL_CTRL_SET_{MIN,MAX}_PROTO_VERSION
constexpr int kEvpPkeyEc = 408;                                // EVP_PKEY_EC (NID_X9_62_id_ecPublicKey)
constexpr int kWantRead = 2, kWantWrite = 3;
constexpr uint32_t kMaxOffset = 0x4000;  // every ssl_st / ssl_session_st field is well below this

thread_local std::set<std::string>* g_keylog = nullptr;
void keylog_cb(const void*, const char* line) {
  if (g_keylog) g_keylog->insert(line);
}

// Reads our own memory without risking a fault on a wrong (huge) offset.
bool peek(const void* addr, void* out, size_t n) {
  iovec local{out, n}, remote{const_cast<void*>(addr), n};
  return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == ssize_t(n);
}
template <typename T>
bool peek_at(const void* base, uint32_t off, T* out) {
  return peek(static_cast<const char*>(base) + off, out, sizeof(T));
}

struct Api {
  fn_method client_method, server_method;
  fn_ctx_new ctx_new;
  fn_free ctx_free, ssl_free;
  fn_use_cert use_cert;
  fn_use_key use_key;
  fn_set_keylog set_keylog;
  fn_ctx_ctrl ctx_ctrl;
  fn_set_str set_suites;
  fn_ssl_new ssl_new;
  fn_set_bio set_bio;
  fn_void_ssl set_connect, set_accept;
  fn_int_ssl do_handshake, version, in_init;
  fn_ptr_ssl get_session, get_rbio;
  fn_get_error get_error;
  fn_bio_pair bio_pair;
  fn_bio_socket bio_socket;
  fn_free bio_free;

  bool load(void* h, std::string* err) {
    bool ok = true;
    auto get = [&](const char* name, auto* fp) {
      void* p = dlsym(h, name);
      if (!p) {
        *err = std::string("symbol ") + name + " not found";
        ok = false;
      }
      *fp = reinterpret_cast<std::remove_pointer_t<decltype(fp)>>(p);
    };
    get("TLS_client_method", &client_method);
    get("TLS_server_method", &server_method);
    get("SSL_CTX_new", &ctx_new);
    get("SSL_CTX_free", &ctx_free);
    get("SSL_free", &ssl_free);
    get("SSL_CTX_use_certificate_ASN1", &use_cert);
    get("SSL_CTX_use_PrivateKey_ASN1", &use_key);
    get("SSL_CTX_set_keylog_callback", &set_keylog);
    get("SSL_CTX_ctrl", &ctx_ctrl);
    get("SSL_CTX_set_ciphersuites", &set_suites);
    get("SSL_new", &ssl_new);
    get("SSL_set_bio", &set_bio);
    get("SSL_set_connect_state", &set_connect);
    get("SSL_set_accept_state", &set_accept);
    get("SSL_do_handshake", &do_handshake);
    get("SSL_version", &version);
    get("SSL_in_init", &in_init);
    get("SSL_get_session", &get_session);
    get("SSL_get_rbio", &get_rbio);
    get("SSL_get_error", &get_error);
    get("BIO_new_bio_pair", &bio_pair);
    get("BIO_new_socket", &bio_socket);
    get("BIO_free", &bio_free);
    return ok;
  }
};

std::string hex(uint32_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << v;
  return s.str();
}

// Builds the Secrets the BPF program would send for `ssl`, from memory at `off`.
bool read_like_bpf(const void* ssl, const ehp_tls_offsets& off, tls::Secrets* s, std::string* err) {
  int version = 0;
  const void* s3 = ssl;
  const void *session = nullptr, *cipher = nullptr;
  uint32_t cipher_id = 0;
  bool ok = peek_at(ssl, off.ssl_st_version_offset, &version) &&
            (!off.ssl_st_s3_ptr_offset || peek_at(ssl, off.ssl_st_s3_ptr_offset, &s3)) &&
            peek(static_cast<const char*>(s3) + off.ssl_st_s3_client_random_offset, s->client_random.data(), 32) &&
            peek_at(ssl, off.ssl_st_session_offset, &session) && session &&
            peek_at(session, off.ssl_session_st_cipher_offset, &cipher) && cipher &&
            peek_at(cipher, off.ssl_cipher_st_id_offset, &cipher_id) &&
            peek_at(session, off.ssl_session_st_master_key_offset, &s->master_key);
  if (ok && version == tls::kTls13)
    ok = peek_at(ssl, off.ssl_st_handshake_secret_offset, &s->handshake_secret) &&
         peek_at(ssl, off.ssl_st_handshake_traffic_hash_offset, &s->handshake_traffic_hash) &&
         peek_at(ssl, off.ssl_st_client_app_traffic_secret_offset, &s->client_app_traffic_secret) &&
         peek_at(ssl, off.ssl_st_server_app_traffic_secret_offset, &s->server_app_traffic_secret) &&
         peek_at(ssl, off.ssl_st_exporter_master_secret_offset, &s->exporter_master_secret);
  if (!ok) {
    *err = "reading the SSL object at the table's offsets faulted";
    return false;
  }
  s->version = uint16_t(version);
  s->cipher_id = uint16_t(cipher_id & 0xFFFF);
  return true;
}

std::set<std::string> split_lines(const std::string& s) {
  std::set<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.insert(l);
  return out;
}

// One client/server handshake at `proto` (0x0303/0x0304), `suites` for TLS 1.3.
// Where handshake_func points after SSL_set_connect_state / SSL_set_accept_state (runtime
// addresses in this process), when cal asks for it.
struct HandshakeFns {
  uintptr_t connect = 0, accept = 0;
};

bool one_handshake(const Api& a, const ehp_tls_offsets& off, int proto, const char* suites, std::string* err,
                   uint32_t handshake_func_offset = 0, HandshakeFns* fns = nullptr) {
  void* sctx = a.ctx_new(a.server_method());
  void* cctx = a.ctx_new(a.client_method());
  void *c = nullptr, *s = nullptr;
  std::set<std::string> keylog;
  bool ok = false;
  std::string what = (proto == tls::kTls13 ? std::string("TLS1.3 ") + suites : std::string("TLS1.2"));
  do {
    if (!sctx || !cctx) {
      *err = "SSL_CTX_new failed";
      break;
    }
    if (a.use_cert(sctx, sizeof kCalCert, kCalCert) != 1 ||
        a.use_key(kEvpPkeyEc, sctx, kCalKey, sizeof kCalKey) != 1) {
      *err = "loading the calibration certificate failed";
      break;
    }
    for (void* ctx : {sctx, cctx}) {
      a.ctx_ctrl(ctx, kCtrlSetMinProto, proto, nullptr);
      a.ctx_ctrl(ctx, kCtrlSetMaxProto, proto, nullptr);
      if (proto == tls::kTls13) a.set_suites(ctx, suites);
      a.set_keylog(ctx, keylog_cb);
    }
    c = a.ssl_new(cctx);
    s = a.ssl_new(sctx);
    void *bc = nullptr, *bs = nullptr;
    if (!c || !s || a.bio_pair(&bc, 0, &bs, 0) != 1) {
      *err = "SSL_new/BIO_new_bio_pair failed";
      break;
    }
    a.set_bio(c, bc, bc);
    a.set_bio(s, bs, bs);
    uintptr_t before_c = 1, before_s = 1;
    if (fns && handshake_func_offset) {
      peek_at(c, handshake_func_offset, &before_c);
      peek_at(s, handshake_func_offset, &before_s);
    }
    a.set_connect(c);
    a.set_accept(s);
    if (fns && handshake_func_offset) {
      // Accept only a field that was NULL after SSL_new and now holds two different pointers.
      uintptr_t fc = 0, fs = 0;
      if (before_c == 0 && before_s == 0 && peek_at(c, handshake_func_offset, &fc) &&
          peek_at(s, handshake_func_offset, &fs) && fc && fs && fc != fs) {
        fns->connect = fc;
        fns->accept = fs;
      }
    }
    // in_init must read 1 now (SSL_set_connect_state) and 0 after the handshake: a field that
    // is merely 0 afterwards would otherwise pass.
    int init_before = 0;
    if (!peek_at(c, off.ssl_st_statem_in_init_offset, &init_before) || init_before != 1 || a.in_init(c) != 1) {
      *err = "ssl_st.statem.in_init at " + hex(off.ssl_st_statem_in_init_offset) + " is not 1 before the handshake";
      break;
    }
    g_keylog = &keylog;
    int rc = 0, rs = 0;
    for (int round = 0; round < 32 && !(rc == 1 && rs == 1); ++round) {
      if (rc != 1) rc = a.do_handshake(c);
      if (rs != 1) rs = a.do_handshake(s);
      for (auto [r, ssl] : {std::pair{rc, c}, std::pair{rs, s}}) {
        if (r == 1) continue;
        int e = a.get_error(ssl, r);
        if (e != kWantRead && e != kWantWrite) rc = rs = -100;
      }
      if (rc == -100) break;
    }
    g_keylog = nullptr;
    if (rc != 1 || rs != 1) {
      *err = what + " handshake did not complete";
      break;
    }
    // Fields the probes read besides the secrets.
    int v = 0, init = -1;
    void* rbio = nullptr;
    void* sess = nullptr;
    if (!peek_at(c, off.ssl_st_version_offset, &v) || v != a.version(c)) {
      *err = "ssl_st.version at " + hex(off.ssl_st_version_offset) + " does not hold SSL_version()";
      break;
    }
    if (!peek_at(c, off.ssl_st_statem_in_init_offset, &init) || init != 0 || a.in_init(c) != 0) {
      *err = "ssl_st.statem.in_init at " + hex(off.ssl_st_statem_in_init_offset) + " is not 0 after the handshake";
      break;
    }
    if (!peek_at(c, off.ssl_st_rbio_offset, &rbio) || rbio != a.get_rbio(c)) {
      *err = "ssl_st.rbio at " + hex(off.ssl_st_rbio_offset) + " does not hold SSL_get_rbio()";
      break;
    }
    if (!peek_at(c, off.ssl_st_session_offset, &sess) || sess != a.get_session(c)) {
      *err = "ssl_st.session at " + hex(off.ssl_st_session_offset) + " does not hold SSL_get_session()";
      break;
    }
    tls::Secrets sec;
    if (!read_like_bpf(c, off, &sec, err)) break;
    auto ours = split_lines(tls::keylog_lines(sec));
    if (keylog.empty()) {
      *err = what + ": the keylog callback produced nothing";
      break;
    }
    if (ours != keylog) {
      size_t missing = 0;
      for (auto& l : keylog) missing += !ours.count(l);
      *err = what + ": " + std::to_string(missing) + " of " + std::to_string(keylog.size()) +
             " keylog lines not reproduced from the memory at the table's offsets";
      break;
    }
    ok = true;
  } while (false);
  if (c) a.ssl_free(c);
  if (s) a.ssl_free(s);
  if (cctx) a.ctx_free(cctx);
  if (sctx) a.ctx_free(sctx);
  return ok;
}

}  // namespace

bool calibrate(const std::string& libssl_path, const ehp_tls_offsets& off, std::string* err, Calibration* cal) {
  const uint32_t* words = reinterpret_cast<const uint32_t*>(&off);
  for (size_t i = 0; i < sizeof(off) / sizeof(uint32_t); ++i)
    if (words[i] >= kMaxOffset) {
      *err = "offset " + hex(words[i]) + " is out of range";
      return false;
    }
  // Never dlclose: OpenSSL pins itself and registers exit handlers.
  void* h = dlopen(libssl_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    *err = std::string("dlopen: ") + dlerror();
    return false;
  }
  Api a;
  if (!a.load(h, err)) return false;
  HandshakeFns fns;
  uint32_t hf = cal ? cal->ssl_st_handshake_func_offset : 0;
  if (hf >= kMaxOffset) hf = 0;
  if (!one_handshake(a, off, tls::kTls12, nullptr, err, hf, &fns) ||
      !one_handshake(a, off, tls::kTls13, "TLS_AES_128_GCM_SHA256", err) ||
      !one_handshake(a, off, tls::kTls13, "TLS_AES_256_GCM_SHA384", err))
    return false;
  if (!cal) return true;
  // rbio->num is the fd of a socket BIO; use an fd number that is certainly not a real one.
  constexpr int kFakeFd = 0x3ead;
  void* b = a.bio_socket(kFakeFd, 0 /* BIO_NOCLOSE */);
  int num = -1;
  cal->bio_num_ok = off.bio_st_num_offset && b && peek_at(b, off.bio_st_num_offset, &num) && num == kFakeFd;
  if (b) a.bio_free(b);
  // Runtime address -> ELF vaddr (minus this library's load base) -> file offset. Both must
  // lie in the same object as SSL_new, i.e. in the libssl under test.
  Dl_info self{}, fc{}, fs{};
  cal->connect_file_offset = cal->accept_file_offset = 0;
  if (fns.connect && dladdr(reinterpret_cast<void*>(a.ssl_new), &self) &&
      dladdr(reinterpret_cast<void*>(fns.connect), &fc) && dladdr(reinterpret_cast<void*>(fns.accept), &fs) &&
      fc.dli_fbase == self.dli_fbase && fs.dli_fbase == self.dli_fbase) {
    auto base = reinterpret_cast<uintptr_t>(self.dli_fbase);
    auto oc = vaddr_to_file_offset(libssl_path, fns.connect - base);
    auto os = vaddr_to_file_offset(libssl_path, fns.accept - base);
    if (oc && os) {
      cal->connect_file_offset = *oc;
      cal->accept_file_offset = *os;
    }
  }
  return true;
}

}  // namespace ehp::tlsprobe
