// Golden-byte tests for the pcapng encoders. Every expected block below was derived by hand from
// the pcapng spec (draft-ietf-opsawg-pcapng sections 3-4), not from the encoder's output:
// little-endian, block = type | total length | fixed fields | data padded to 4 | options | length.
#include "output/pcapng.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

namespace ehp::pcapng {
namespace {

// "0a 0d|0d0a" -> bytes; spaces and '|' are only for readability.
std::vector<uint8_t> hex(std::string_view s) {
  std::vector<uint8_t> out;
  int hi = -1;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) continue;
    const int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (std::tolower(c) - 'a' + 10);
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  EXPECT_EQ(hi, -1) << "odd number of hex digits";
  return out;
}

// Encodes with `size_fn`/`encode_fn`, checks size == returned == expected, that one byte less
// is refused, and that the bytes match.
template <typename SizeFn, typename EncodeFn>
void expect_block(std::string_view expected_hex, SizeFn size_fn, EncodeFn encode_fn) {
  const std::vector<uint8_t> want = hex(expected_hex);
  const size_t size = size_fn();
  ASSERT_EQ(size, want.size());
  std::vector<uint8_t> buf(size + 16, 0xAA);  // poison so unwritten padding shows up
  ASSERT_EQ(encode_fn(std::span<uint8_t>(buf.data(), size)), size);
  EXPECT_EQ(std::vector<uint8_t>(buf.begin(), buf.begin() + size), want);
  for (size_t i = size; i < buf.size(); ++i) ASSERT_EQ(buf[i], 0xAA) << "wrote past the end at " << i;
  std::vector<uint8_t> small(size - 1);
  EXPECT_EQ(encode_fn(std::span<uint8_t>(small)), 0u) << "must refuse a buffer one byte short";
  // The block must also pass our own reader's framing checks (after an SHB when it is not one).
  EXPECT_EQ(complete_prefix(want).len_bytes_or(0), 0u);
}

}  // namespace
}  // namespace ehp::pcapng
