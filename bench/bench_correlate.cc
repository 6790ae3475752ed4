// SPDX-License-Identifier: BSD-2-Clause
// TLS key math and the ClientHello parser, one stage per benchmark (issue 6):
//   hkdf_expand_label (SHA-256 / SHA-384), keylog_lines for a TLS 1.3 session (two
//   derivations + hex formatting), decode_frame + classify_tls on a ClientHello frame and on
//   a plain 1400-byte data frame, and ClientRandomDedup.insert.
#include <benchmark/benchmark.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <array>
#include <cstring>
#include <vector>

#include "net/frame.h"
#include "tls/keys.h"

namespace {

using ehp::net::FrameInfo;
using ehp::net::TlsHandshake;

void BM_HkdfExpandLabel(benchmark::State& state) {
  const size_t hl = static_cast<size_t>(state.range(0));
  std::vector<uint8_t> secret(hl, 0x42), ctx(hl, 0x17), out(hl);
  for (auto _ : state) {
    const bool ok = ehp::tls::hkdf_expand_label(hl, secret, "c hs traffic", ctx, out);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HkdfExpandLabel)->Arg(32)->Arg(48)->ArgName("hash_len");

// Baseline for the ratio: the straightforward use of EVP_KDF that fetches the algorithm and
// builds a fresh context (digest lookup included) on every call.
void BM_HkdfFetchPerCallBaseline(benchmark::State& state) {
  std::vector<uint8_t> secret(32, 0x42), out(32);
  uint8_t info[64] = {0, 32, 18, 't', 'l', 's', '1', '3', ' ', 'c', ' ', 'h', 's', ' ',
                      't', 'r', 'a', 'f', 'f', 'i', 'c', 32};
  for (auto _ : state) {
    EVP_KDF* kdf = EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr);
    EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA2-256"), 0),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, secret.data(), secret.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, 22 + 32),
        OSSL_PARAM_construct_end(),
    };
    benchmark::DoNotOptimize(EVP_KDF_derive(ctx, out.data(), out.size(), params));
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HkdfFetchPerCallBaseline);

void BM_KeylogLinesTls13(benchmark::State& state) {
  ehp::tls::Secrets s;
  s.version = ehp::tls::kTls13;
  s.cipher_id = static_cast<uint16_t>(state.range(0));
  for (size_t i = 0; i < 64; ++i) {
    s.handshake_secret[i] = static_cast<uint8_t>(i + 1);
    s.handshake_traffic_hash[i] = static_cast<uint8_t>(i + 2);
    s.client_app_traffic_secret[i] = static_cast<uint8_t>(i + 3);
    s.server_app_traffic_secret[i] = static_cast<uint8_t>(i + 4);
    s.exporter_master_secret[i] = static_cast<uint8_t>(i + 5);
  }
  s.client_random.fill(0x99);
  char buf[ehp::tls::kMaxKeylogBytes];
  size_t bytes = 0;
  for (auto _ : state) {
    const size_t n = ehp::tls::keylog_lines_to(s, buf);
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
    bytes += n;
  }
  if (bytes == 0) state.SkipWithError("keylog_lines_to produced nothing");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_KeylogLinesTls13)->Arg(0x1301)->Arg(0x1302)->ArgName("cipher");

// Ethernet + IPv4 + TCP frame around `payload`.
std::vector<uint8_t> tcp_frame(const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> f = {0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00};
  const uint16_t ip_len = static_cast<uint16_t>(20 + 20 + payload.size());
  const uint8_t ip[20] = {0x45, 0, static_cast<uint8_t>(ip_len >> 8), static_cast<uint8_t>(ip_len),
                          0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2};
  f.insert(f.end(), ip, ip + 20);
  const uint8_t tcp[20] = {0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0};
  f.insert(f.end(), tcp, tcp + 20);
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

std::vector<uint8_t> client_hello_record() {
  // A 512-byte ClientHello record, roughly what curl/OpenSSL 3 sends; only the first 43
  // bytes are looked at, the size just makes the frame realistic.
  std::vector<uint8_t> rec(5 + 4 + 503, 0);
  const uint16_t hs_len = 503;
  rec[0] = 22, rec[1] = 3, rec[2] = 1, rec[3] = (4 + hs_len) >> 8, rec[4] = (4 + hs_len) & 0xff;
  rec[5] = 1, rec[6] = 0, rec[7] = hs_len >> 8, rec[8] = hs_len & 0xff;
  rec[9] = 3, rec[10] = 3;
  for (size_t i = 0; i < 32; ++i) rec[11 + i] = static_cast<uint8_t>(i * 13);
  return rec;
}

void run_decode_classify(benchmark::State& state, const std::vector<uint8_t>& frame,
                         TlsHandshake want) {
  size_t matched = 0;
  for (auto _ : state) {
    FrameInfo fi;
    const bool ok = ehp::net::decode_frame(ehp::net::kLinktypeEthernet, frame, fi);
    const auto h = ehp::net::classify_tls(
        std::span<const uint8_t>(frame.data() + fi.l4_payload_offset, fi.l4_payload_len));
    benchmark::DoNotOptimize(h);
    matched += ok && h.type == want;
  }
  if (matched != static_cast<size_t>(state.iterations())) state.SkipWithError("wrong result");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * frame.size()));
}

void BM_DecodeClassifyClientHello(benchmark::State& state) {
  run_decode_classify(state, tcp_frame(client_hello_record()), TlsHandshake::ClientHello);
}
BENCHMARK(BM_DecodeClassifyClientHello);

void BM_DecodeClassifyDataFrame(benchmark::State& state) {
  // A 1400-byte TLS application-data segment: the common case the parser must reject fast.
  std::vector<uint8_t> payload(1400 - 54, 0xab);
  payload[0] = 23, payload[1] = 3, payload[2] = 3, payload[3] = 0x05, payload[4] = 0x41;
  run_decode_classify(state, tcp_frame(payload), TlsHandshake::None);
}
BENCHMARK(BM_DecodeClassifyDataFrame);

void BM_FlowKeyHash(benchmark::State& state) {
  const auto frame = tcp_frame(client_hello_record());
  FrameInfo fi;
  ehp::net::decode_frame(ehp::net::kLinktypeEthernet, frame, fi);
  for (auto _ : state) {
    const auto k = ehp::net::flow_key(fi);
    benchmark::DoNotOptimize(ehp::net::FlowKeyHash{}(k));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FlowKeyHash);

void BM_DedupInsert(benchmark::State& state) {
  ehp::tls::ClientRandomDedup d(static_cast<size_t>(state.range(0)));
  std::array<uint8_t, 32> cr{};
  uint64_t n = 0;
  for (auto _ : state) {
    ++n;
    std::memcpy(cr.data(), &n, sizeof n);  // always fresh: exercises eviction at capacity
    benchmark::DoNotOptimize(d.insert(cr));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DedupInsert)->Arg(4096)->Arg(65536)->ArgName("capacity");

}  // namespace

BENCHMARK_MAIN();
