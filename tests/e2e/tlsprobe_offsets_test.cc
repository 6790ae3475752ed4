// Offsets are confirmed against the real library before anything is traced: the verified 3.0
// row passes accessor decoding and the calibration handshakes on this machine's libssl, and
// every kind of wrong table or foreign library is refused with one line. No root needed.
#include <gtest/gtest.h>

#include "tlsprobe/libssl.h"
#include "tlsprobe/tlsprobe.h"

using namespace ehp::tlsprobe;

namespace {
const char* kSystemLibssl = "/usr/lib/x86_64-linux-gnu/libssl.so.3";

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
  auto v = detect_version(kSystemLibssl, &err);
  ASSERT_TRUE(v) << err;
  EXPECT_EQ(v->major, 3);
  EXPECT_EQ(v->minor, 0);
  EXPECT_NE(v->text.find("OpenSSL 3.0."), std::string::npos) << v->text;
}

TEST(TlsProbeOffsets, TableRows) {
  OpenSslVersion v;
  v.major = 3, v.minor = 0, v.patch = 7;
  ASSERT_NE(offsets_for(v), nullptr);
  EXPECT_TRUE(offsets_for(v)->verified);
  EXPECT_EQ(offsets_for(v)->off.ssl_st_session_offset, 0x918u);
  v.minor = 1;
  ASSERT_NE(offsets_for(v), nullptr);
  EXPECT_FALSE(offsets_for(v)->verified);
  v.major = 1, v.minor = 1, v.patch = 1;
  ASSERT_NE(offsets_for(v), nullptr);
  EXPECT_FALSE(offsets_for(v)->verified);
  EXPECT_NE(offsets_for(v)->off.ssl_st_s3_ptr_offset, 0u);
  v.major = 3, v.minor = 2, v.patch = 0;  // SSL_CONNECTION layout: no row
  EXPECT_EQ(offsets_for(v), nullptr);
}

TEST(TlsProbeOffsets, VerifiedRowConfirmedOnSystemLibrary) {
  std::string how, err;
  Calibration cal;
  cal.ssl_st_handshake_func_offset = 0x30;
  ASSERT_TRUE(confirm_offsets(kSystemLibssl, table30(), &how, &err, &cal)) << err;
  EXPECT_NE(how.find("calibration"), std::string::npos) << how;
  EXPECT_TRUE(cal.bio_num_ok);
  // ossl_statem_connect/accept: distinct, inside the file, and not an exported symbol's entry.
  EXPECT_NE(cal.connect_file_offset, 0u);
  EXPECT_NE(cal.accept_file_offset, 0u);
  EXPECT_NE(cal.connect_file_offset, cal.accept_file_offset);
  std::vector<std::string> undecoded;
  ASSERT_TRUE(check_accessors(kSystemLibssl, table30(), &err, &undecoded)) << err;
  EXPECT_TRUE(undecoded.empty()) << undecoded.front();
}

TEST(TlsProbeOffsets, DecoderCatchesDriftedSession) {
  auto off = table30();
  off.ssl_st_session_offset = 0x938;
  std::string err;
  EXPECT_FALSE(check_accessors(kSystemLibssl, off, &err));
  EXPECT_NE(err.find("SSL_get_session"), std::string::npos) << err;
  EXPECT_NE(err.find("0x918"), std::string::npos) << err;
}

TEST(TlsProbeOffsets, DecoderCatchesClientRandomAndMasterKey) {
  auto off = table30();
  off.ssl_st_s3_client_random_offset = 0x140;
  std::string err;
  EXPECT_FALSE(check_accessors(kSystemLibssl, off, &err));
  EXPECT_NE(err.find("SSL_get_client_random"), std::string::npos) << err;
  off = table30();
  off.ssl_session_st_master_key_offset = 0x58;
  EXPECT_FALSE(check_accessors(kSystemLibssl, off, &err));
  EXPECT_NE(err.find("SSL_SESSION_get_master_key"), std::string::npos) << err;
}

// Fields no accessor exposes (the TLS 1.3 secrets) are caught by the calibration handshake.
TEST(TlsProbeOffsets, CalibrationCatchesEachTls13Secret) {
  uint32_t ehp_tls_offsets::*fields[] = {
      &ehp_tls_offsets::ssl_st_handshake_secret_offset,
      &ehp_tls_offsets::ssl_st_handshake_traffic_hash_offset,
      &ehp_tls_offsets::ssl_st_client_app_traffic_secret_offset,
      &ehp_tls_offsets::ssl_st_server_app_traffic_secret_offset,
      &ehp_tls_offsets::ssl_st_exporter_master_secret_offset,
  };
  for (auto f : fields) {
    auto off = table30();
    off.*f += 0x40;
    std::string err;
    EXPECT_FALSE(calibrate(kSystemLibssl, off, &err)) << "offset " << off.*f;
    EXPECT_NE(err.find("TLS1.3"), std::string::npos) << err;
  }
  auto off = table30();
  off.ssl_session_st_cipher_offset += 8;
  std::string err;
  EXPECT_FALSE(calibrate(kSystemLibssl, off, &err));
  off = table30();
  off.ssl_st_statem_in_init_offset = 0x60;
  EXPECT_FALSE(calibrate(kSystemLibssl, off, &err));
  off = table30();
  off.ssl_st_session_offset = 0x3fff0;
  EXPECT_FALSE(calibrate(kSystemLibssl, off, &err));
  EXPECT_NE(err.find("out of range"), std::string::npos) << err;
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
  EXPECT_NE(err.find("refusing"), std::string::npos) << err;
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

  std::string how, err;
  Calibration cal;
  cal.ssl_st_handshake_func_offset = 0x30;
  ASSERT_TRUE(confirm_offsets(kSystemLibssl, table30(), &how, &err, &cal)) << err;
  const uint64_t c = emulated_probe_point(kSystemLibssl, cal.connect_file_offset);
  const uint64_t a = emulated_probe_point(kSystemLibssl, cal.accept_file_offset);
  EXPECT_GT(c, cal.connect_file_offset) << "ossl_statem_connect: expected a register move, then a jmp";
  EXPECT_GT(a, cal.accept_file_offset) << "ossl_statem_accept: expected a register move, then a jmp";
  EXPECT_LE(c - cal.connect_file_offset, 8u);
  EXPECT_LE(a - cal.accept_file_offset, 8u);
}
