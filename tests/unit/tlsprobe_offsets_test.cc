// SPDX-License-Identifier: BSD-2-Clause
// Offsets are confirmed against the real library before anything is traced, by reading the
// file only: the verified 3.0 row passes accessor decoding on this machine's libssl, the
// handshake functions found in the file are the ones the library installs at run time, and
// every kind of wrong table, foreign library or hostile file is refused with one line.
// No root needed.
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>

#include <tuple>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <elf.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <cstdlib>
#include <filesystem>

#include "tlsprobe/libssl.h"
#include "tlsprobe/tlsprobe.h"

using namespace ehp::tlsprobe;

namespace {
const char* kSystemLibssl = "/usr/lib/x86_64-linux-gnu/libssl.so.3";

// The system library, opened and parsed as the probe does.
struct Opened {
  UntrustedFile file;
  ElfFile elf;
};
std::unique_ptr<Opened> open_elf(const std::string& path) {
  std::string err;
  auto f = UntrustedFile::open_named(path, &err);
  EXPECT_TRUE(f) << err;
  if (!f) return nullptr;
  auto o = std::make_unique<Opened>();
  o->file = std::move(*f);
  EXPECT_TRUE(o->elf.open(o->file, path, &err)) << err;
  return o;
}
const ElfFile& sys_elf() {
  static auto o = open_elf(kSystemLibssl);
  return o->elf;
}

ehp_tls_offsets table30() {
  OpenSslVersion v;
  v.major = 3;
  v.minor = 0;
  v.patch = 19;
  const OffsetTable* row = offsets_for(v);
  EXPECT_NE(row, nullptr);
  return row ? row->off : ehp_tls_offsets{};
}
}  // namespace

TEST(TlsProbeOffsets, SystemLibraryVersionFromLibcrypto) {
  std::string err;
  auto lib = named_libssl(kSystemLibssl, &err);
  ASSERT_TRUE(lib) << err;
  auto v = detect_version(*lib, sys_elf(), &err);
  ASSERT_TRUE(v) << err;
  EXPECT_EQ(v->major, 3);
  EXPECT_EQ(v->minor, 0);
  EXPECT_NE(v->text.find("OpenSSL 3.0."), std::string::npos) << v->text;
}

TEST(TlsProbeOffsets, TableRows) {
  OpenSslVersion v;
  v.major = 3, v.minor = 0, v.patch = 7;
  ASSERT_NE(offsets_for(v), nullptr);
  EXPECT_EQ(offsets_for(v)->off.ssl_st_session_offset, 0x918u);
  // Only the proven 3.0 layout has a row: the others go to the secret logger (stack_logger.cc).
  for (auto [ma, mi, pa] : {std::tuple{3, 1, 0}, {1, 1, 1}, {3, 2, 0}, {3, 5, 9}}) {
    v.major = ma, v.minor = mi, v.patch = pa;
    EXPECT_EQ(offsets_for(v), nullptr) << ma << "." << mi << "." << pa;
  }
}

TEST(TlsProbeOffsets, VerifiedRowConfirmedOnSystemLibrary) {
  std::string how, err;
  ASSERT_TRUE(confirm_offsets(sys_elf(), table30(), &how, &err)) << err;
  EXPECT_NE(how.find("accessors decoded"), std::string::npos) << how;
  std::vector<std::string> undecoded;
  ASSERT_TRUE(check_accessors(sys_elf(), table30(), &err, &undecoded)) << err;
  EXPECT_TRUE(undecoded.empty()) << undecoded.front();
}

// ossl_statem_connect/accept, located from the file alone, are exactly what this library puts
// into ssl_st.handshake_func at run time (read here, in the test process, from a real SSL).
TEST(TlsProbeOffsets, HandshakeFunctionsFromTheFileMatchTheRuntime) {
  std::string why;
  auto fns = locate_handshake_functions(sys_elf(), 0x30, &why);
  ASSERT_TRUE(fns) << why;
  EXPECT_NE(fns->connect_file_offset, fns->accept_file_offset);

  void* h = dlopen(kSystemLibssl, RTLD_NOW | RTLD_NOLOAD);  // linked into this test already
  ASSERT_NE(h, nullptr);
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  ASSERT_NE(ctx, nullptr);
  uint64_t runtime[2] = {};
  for (int side = 0; side < 2; ++side) {
    SSL* s = SSL_new(ctx);
    ASSERT_NE(s, nullptr);
    if (side == 0) SSL_set_connect_state(s);
    else SSL_set_accept_state(s);
    void* fn = nullptr;
    memcpy(&fn, reinterpret_cast<const char*>(s) + 0x30, sizeof fn);
    Dl_info info{}, self{};
    ASSERT_TRUE(dladdr(fn, &info));
    ASSERT_TRUE(dladdr(reinterpret_cast<void*>(&SSL_new), &self));
    ASSERT_EQ(info.dli_fbase, self.dli_fbase) << "handshake_func is not in libssl";
    auto off = sys_elf().file_offset(reinterpret_cast<uintptr_t>(fn) - reinterpret_cast<uintptr_t>(self.dli_fbase));
    ASSERT_TRUE(off);
    runtime[side] = *off;
    SSL_free(s);
  }
  SSL_CTX_free(ctx);
  EXPECT_EQ(fns->connect_file_offset, runtime[0]);
  EXPECT_EQ(fns->accept_file_offset, runtime[1]);
  // A wrong handshake_func offset in the table is caught: no store to it decodes.
  EXPECT_FALSE(locate_handshake_functions(sys_elf(), 0x38, &why));
}

// The distribution's libssl is stripped and does not export ssl_log_secret: the locator finds
// it from the one function that calls the key log callback (nss_keylog_int, which the
// compiler left out of line here) and the one function that passes it the client random. The
// found function is called here, in this test's process, as ssl_log_secret(conn, label,
// secret, len) with a key log callback set: the line the library prints proves the signature
// and the client random's place. (Only this test runs library code; ecapture-hp never does.)
namespace {
std::string g_logged;
void keylog_cb(const SSL*, const char* line) { g_logged = line; }
}  // namespace

TEST(TlsProbeOffsets, SecretLoggerFoundInStrippedSystemLibrary) {
  ASSERT_EQ(sys_elf().dynsym().count("ssl_log_secret"), 0u) << "the system libssl exports it: nothing to find";
  std::string why;
  auto lg = locate_secret_logger(sys_elf(), &why);
  ASSERT_TRUE(lg) << why;
  EXPECT_EQ(lg->cr_ptr_off, 0u);
  EXPECT_EQ(lg->cr_off, table30().ssl_st_s3_client_random_offset);  // agrees with the proven table

  ASSERT_EQ(sys_elf().file_offset(lg->file_offset), std::optional<uint64_t>(lg->file_offset))
      << "text vaddr != file offset: cannot compute the runtime address";
  Dl_info self{};
  ASSERT_TRUE(dladdr(reinterpret_cast<void*>(&SSL_new), &self));
  using LogSecret = int (*)(SSL*, const char*, const uint8_t*, size_t);
  auto fn = reinterpret_cast<LogSecret>(reinterpret_cast<uintptr_t>(self.dli_fbase) + lg->file_offset);
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  ASSERT_NE(ctx, nullptr);
  SSL_CTX_set_keylog_callback(ctx, keylog_cb);
  SSL* s = SSL_new(ctx);
  ASSERT_NE(s, nullptr);
  // A ClientHello into a memory BIO: the client random is now random bytes, not zeros.
  SSL_set_bio(s, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  EXPECT_EQ(SSL_connect(s), -1);
  uint8_t cr[32], zero[32] = {};
  ASSERT_EQ(SSL_get_client_random(s, cr, sizeof cr), sizeof cr);
  ASSERT_NE(memcmp(cr, zero, sizeof cr), 0);
  const uint8_t secret[4] = {0xde, 0xad, 0xbe, 0xef};
  g_logged.clear();
  EXPECT_EQ(fn(s, "EHP_TEST_LABEL", secret, sizeof secret), 1);
  std::string want = "EHP_TEST_LABEL ";
  for (uint8_t b : cr) {
    char h[3];
    snprintf(h, sizeof h, "%02x", b);
    want += h;
  }
  EXPECT_EQ(g_logged, want + " deadbeef");
  SSL_free(s);
  SSL_CTX_free(ctx);
}

// The shapes the locator must handle in real builds, as tiny assembled libraries
// (tests/unit/shapes/*.S, read from the disassembly of upstream 3.2-3.4 -O3 and Debian 1.1.1w):
// SSL_test_expected_logger marks the function the probe must sit on.
namespace {
void expect_logger(const char* path, const OpenSslVersion* v, uint32_t ptr, uint32_t off) {
  auto o = open_elf(path);
  ASSERT_TRUE(o);
  std::string why;
  auto lg = locate_secret_logger(o->elf, &why, v);
  ASSERT_TRUE(lg) << path << ": " << why;
  auto want = o->elf.dynsym().find("SSL_test_expected_logger");
  ASSERT_NE(want, o->elf.dynsym().end());
  EXPECT_EQ(lg->file_offset, *o->elf.file_offset(want->second)) << path;
  EXPECT_EQ(lg->cr_ptr_off, ptr) << path;
  EXPECT_EQ(lg->cr_off, off) << path;
}
}  // namespace

TEST(TlsProbeOffsets, SecretLoggerShapesOfRealBuilds) {
  // -O3 3.4: two functions call the callback (nss_keylog_int inlined into both callers), the
  // QUIC writer calls through the same displacement, SSL_get_client_random dispatches on the
  // object type: the one that reads the client random, at conn+0x148, no pointer hop.
  OpenSslVersion v34;
  v34.major = 3, v34.minor = 4, v34.patch = 6;
  expect_logger(EHP_SHAPE_34_O3, &v34, 0, 0x148);
  expect_logger(EHP_SHAPE_34_O3, nullptr, 0, 0x148);  // the type dispatch alone says no hop
  // Debian 1.1.1w: the body split out after the callback check calls it; ssl_log_secret, which
  // passes the client random (through the s3 pointer) and 32, is the one to hook.
  OpenSslVersion v111;
  v111.major = 1, v111.minor = 1, v111.patch = 1;
  expect_logger(EHP_SHAPE_111_SPLIT, &v111, 0xa8, 0xb8);
}

TEST(TlsProbeOffsets, DecoderCatchesDriftedSession) {
  auto off = table30();
  off.ssl_st_session_offset = 0x938;
  std::string err;
  EXPECT_FALSE(check_accessors(sys_elf(), off, &err));
  EXPECT_NE(err.find("SSL_get_session"), std::string::npos) << err;
  EXPECT_NE(err.find("0x918"), std::string::npos) << err;
}

TEST(TlsProbeOffsets, DecoderCatchesClientRandomAndMasterKey) {
  auto off = table30();
  off.ssl_st_s3_client_random_offset = 0x140;
  std::string err;
  EXPECT_FALSE(check_accessors(sys_elf(), off, &err));
  EXPECT_NE(err.find("SSL_get_client_random"), std::string::npos) << err;
  off = table30();
  off.ssl_session_st_master_key_offset = 0x58;
  EXPECT_FALSE(check_accessors(sys_elf(), off, &err));
  EXPECT_NE(err.find("SSL_SESSION_get_master_key"), std::string::npos) << err;
}

// A library whose accessors cannot be decoded cannot be confirmed, and nothing else may
// confirm it: its code is never run.
TEST(TlsProbeOffsets, UndecodableAccessorsRefused) {
  auto o = open_elf(EHP_FAKE_LIBSSL);
  ASSERT_TRUE(o);
  auto off = table30();
  off.ssl_st_session_offset = 0x938;  // what the fake's SSL_get_session reads
  std::string how, err;
  EXPECT_FALSE(confirm_offsets(o->elf, off, &how, &err));
  EXPECT_NE(err.find("not decodable"), std::string::npos) << err;
}

// Hostile files: refused at once, with memory bounded, without waiting on a FIFO.
TEST(TlsProbeOffsets, HostileFilesRefusedFast) {
  std::string err;
  EXPECT_FALSE(named_libssl("/dev/zero", &err));
  EXPECT_NE(err.find("/dev/zero"), std::string::npos) << err;
  auto dir = std::filesystem::temp_directory_path() / ("ehp-offsets-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string fifo = (dir / "libssl.so.3").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(named_libssl(fifo, &err));
  EXPECT_NE(err.find("not a regular file"), std::string::npos) << err;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  unlink(fifo.c_str());
  // 1 GiB sparse file that starts like an ELF whose headers claim huge tables.
  const std::string big = (dir / "big.so").string();
  {
    auto sys = open_elf(kSystemLibssl);
    int fd = open(big.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    std::string head = sys->elf.read_at(0, 4096);
    ASSERT_EQ(write(fd, head.data(), head.size()), ssize_t(head.size()));
    ASSERT_EQ(ftruncate(fd, 1ll << 30), 0);
    close(fd);
  }
  t0 = std::chrono::steady_clock::now();
  auto lib = named_libssl(big, &err);
  ASSERT_TRUE(lib) << err;  // a regular file within the size cap: read, bounded
  ElfFile e;
  std::string why;
  if (e.open(lib->file, big, &why)) {
    EXPECT_FALSE(detect_version(*lib, e, &why));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  // A symbolic link inside a scanned path is not followed.
  std::filesystem::create_directories(dir / "lib");
  std::filesystem::create_symlink(kSystemLibssl, dir / "lib" / "libssl.so.3");
  EXPECT_FALSE(UntrustedFile::open_in_root(dir.string(), "/lib/libssl.so.3", &err));
  EXPECT_NE(err.find("symbolic link"), std::string::npos) << err;
  // ".." cannot climb out of the root it is resolved in.
  EXPECT_FALSE(UntrustedFile::open_in_root(dir.string(), "/../../../../usr/lib/x86_64-linux-gnu/libssl.so.3", &err));
  std::filesystem::remove_all(dir);
}

// A large executable's exports are found through .gnu.hash (node: 90k symbols, 10 MB with their
// names, read whole before): every looked-up name gets the value a full read of .dynsym gives.
// Then the same file with its hash table scrambled: no crash, bounded, nothing wrong found.
namespace {
// name -> value of every defined .dynsym symbol, by a plain full read of the file.
std::map<std::string, uint64_t> full_dynsym(const std::string& path) {
  std::map<std::string, uint64_t> out;
  std::string d;
  {
    FILE* f = fopen(path.c_str(), "rb");
    if (!f) return out;
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) d.append(buf, n);
    fclose(f);
  }
  Elf64_Ehdr eh;
  memcpy(&eh, d.data(), sizeof eh);
  for (int i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr s, str;
    memcpy(&s, d.data() + eh.e_shoff + i * sizeof s, sizeof s);
    if (s.sh_type != SHT_DYNSYM) continue;
    memcpy(&str, d.data() + eh.e_shoff + s.sh_link * sizeof s, sizeof str);
    for (uint64_t o = 0; o + sizeof(Elf64_Sym) <= s.sh_size; o += sizeof(Elf64_Sym)) {
      Elf64_Sym sym;
      memcpy(&sym, d.data() + s.sh_offset + o, sizeof sym);
      if (sym.st_shndx != SHN_UNDEF && sym.st_value) out.emplace(d.data() + str.sh_offset + sym.st_name, sym.st_value);
    }
  }
  return out;
}
}  // namespace

TEST(TlsProbeOffsets, LargeExecutableSymbolsThroughGnuHash) {
  const char* node = "/usr/bin/node";
  if (access(node, R_OK) != 0) GTEST_SKIP() << node << " missing";
  auto o = open_elf(node);
  ASSERT_TRUE(o);
  const auto all = full_dynsym(node);
  ASSERT_GT(all.size(), 20000u) << "not a large symbol table: the hash path is not exercised";
  size_t found = 0;
  for (const char* name : kLookedUpSymbols) {
    auto want = all.find(name);
    auto got = o->elf.dynsym().find(name);
    ASSERT_EQ(got != o->elf.dynsym().end(), want != all.end()) << name;
    if (want == all.end()) continue;
    EXPECT_EQ(got->second, want->second) << name;
    ++found;
  }
  EXPECT_GE(found, 18u);
  EXPECT_TRUE(o->elf.exports("ssl_log_secret"));
  std::string why;
  EXPECT_TRUE(locate_secret_logger(o->elf, &why)) << why;

  // Scrambled .gnu.hash (chains that never end, buckets past the table): bounded, no crash, and
  // whatever is found is still a real symbol of that name.
  auto dir = std::filesystem::temp_directory_path() / ("ehp-hash-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string bad = (dir / "node").string();
  std::filesystem::copy_file(node, bad);
  {
    FILE* f = fopen(bad.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    Elf64_Ehdr eh;
    ASSERT_EQ(fread(&eh, sizeof eh, 1, f), 1u);
    for (int i = 0; i < eh.e_shnum; ++i) {
      Elf64_Shdr s;
      fseek(f, long(eh.e_shoff + i * sizeof s), SEEK_SET);
      ASSERT_EQ(fread(&s, sizeof s, 1, f), 1u);
      if (s.sh_type != SHT_GNU_HASH) continue;
      uint32_t hdr[4];
      fseek(f, long(s.sh_offset), SEEK_SET);
      ASSERT_EQ(fread(hdr, sizeof hdr, 1, f), 1u);
      // Every bucket and chain word from the header on: 0x00010000 (a far index, a hash
      // whose low bit is never set: chains never end).
      std::vector<uint32_t> junk((s.sh_size - 16 - uint64_t(hdr[2]) * 8) / 4, 0x00010000u);
      fseek(f, long(s.sh_offset + 16 + uint64_t(hdr[2]) * 8), SEEK_SET);
      ASSERT_EQ(fwrite(junk.data(), 4, junk.size(), f), junk.size());
    }
    fclose(f);
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto b = open_elf(bad);
  ASSERT_TRUE(b);
  for (auto& [name, v] : b->elf.dynsym()) {
    auto want = all.find(name);
    ASSERT_NE(want, all.end()) << name;
    EXPECT_EQ(v, want->second) << name;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));  // a hang guard
  std::filesystem::remove_all(dir);
}

TEST(TlsProbeOffsets, FakeVendorLibraryRefusedWithOneLine) {
  Options o;
  o.libssl_path = EHP_FAKE_LIBSSL;
  std::string err;
  auto p = TlsProbe::open(o, &err);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  EXPECT_NE(err.find(EHP_FAKE_LIBSSL), std::string::npos) << err;
  EXPECT_NE(err.find("OpenSSL 3.0.12"), std::string::npos) << err;
  EXPECT_NE(err.find("not confirmed"), std::string::npos) << err;
  EXPECT_NE(err.find("0x938"), std::string::npos) << err;
}

TEST(TlsProbeOffsets, NotALibsslRefused) {
  Options o;
  o.libssl_path = "/bin/true";
  std::string err;
  EXPECT_EQ(TlsProbe::open(o, &err), nullptr);
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  EXPECT_NE(err.find("not traced"), std::string::npos) << err;
}

// Probe points past instructions the kernel would single-step: the decoder's rules on byte
// patterns, then on this machine's library, where both handshake functions are a register
// move and a tail jump (xor esi,esi / mov $1,esi; jmp state_machine).
TEST(TlsProbeOffsets, EmulatedProbePointSkipsToAJumpOrPush) {
  using B = std::vector<uint8_t>;
  auto point = [](const B& code) { return emulated_probe_point(std::span<const uint8_t>(code), 0x1000); };
  EXPECT_EQ(point(B{0xe9, 1, 2, 3, 4}), 0x1000u) << "already a jmp: the entry";
  EXPECT_EQ(point(B{0x53, 0x48}), 0x1000u) << "already a push: the entry";
  EXPECT_EQ(point(B{0x31, 0xf6, 0xe9, 0, 0, 0, 0}), 0x1002u) << "xor esi,esi; jmp";
  EXPECT_EQ(point(B{0xbe, 1, 0, 0, 0, 0xe9, 0, 0, 0, 0}), 0x1005u) << "mov $1,esi; jmp";
  EXPECT_EQ(point(B{0xf3, 0x0f, 0x1e, 0xfa, 0x41, 0x54}), 0x1004u) << "endbr64; push r12";
  EXPECT_EQ(point(B{0xf3, 0x0f, 0x1e, 0xfa, 0x31, 0xc0, 0xeb, 0x10}), 0x1006u);
  EXPECT_EQ(point(B{0x48, 0x83, 0xec, 0x18, 0xe9}), 0x1000u) << "sub rsp moves the return address";
  EXPECT_EQ(point(B{0x31, 0xff, 0xe9, 0, 0, 0, 0}), 0x1000u) << "xor edi,edi clobbers the argument";
  EXPECT_EQ(point(B{0xbf, 1, 0, 0, 0, 0xe9}), 0x1000u) << "mov to edi clobbers the argument";
  EXPECT_EQ(point(B{0xbe, 1, 0}), 0x1000u) << "truncated";
  EXPECT_EQ(point(B{0x31, 0xf6, 0x31, 0xd2, 0x90}), 0x1000u) << "no emulated instruction follows";
  EXPECT_EQ(point(B{}), 0x1000u);

  std::string why;
  auto fns = locate_handshake_functions(sys_elf(), 0x30, &why);
  ASSERT_TRUE(fns) << why;
  const uint64_t c = emulated_probe_point(sys_elf(), fns->connect_file_offset);
  const uint64_t a = emulated_probe_point(sys_elf(), fns->accept_file_offset);
  EXPECT_GT(c, fns->connect_file_offset) << "ossl_statem_connect: expected a register move, then a jmp";
  EXPECT_GT(a, fns->accept_file_offset) << "ossl_statem_accept: expected a register move, then a jmp";
  EXPECT_LE(c - fns->connect_file_offset, 8u);
  EXPECT_LE(a - fns->accept_file_offset, 8u);
}
