#include "ctmq/common/byte_coding.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace ctmq {
namespace {

// The oracle: the byte at offset i of a little-endian N-byte integer is
// (value >> 8i) & 0xff, whatever the host's byte order.
TEST(ByteCoding, LittleEndianBytesAreLeastSignificantFirst) {
  char b[8];
  encode_le32(b, 0x0A0B0C0Du);
  EXPECT_EQ(std::string(b, 4), std::string("\x0D\x0C\x0B\x0A", 4));
  encode_le64(b, 0x0102030405060708ull);
  EXPECT_EQ(std::string(b, 8), std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8));
  EXPECT_EQ(decode_le16("\x34\x12"), 0x1234u);
  EXPECT_EQ(decode_le32("\xff\x00\x00\x80"), 0x800000ffu);
  std::string appended;
  append_le32(appended, 7);
  append_le64(appended, 0x8000000000000001ull);
  EXPECT_EQ(appended, std::string("\x07\0\0\0\x01\0\0\0\0\0\0\x80", 12));
}

TEST(ByteCoding, BigEndianBytesAreMostSignificantFirst) {
  // The IDX images magic (0x00000803) and a 60000-image count, as in the file.
  EXPECT_EQ(decode_be32("\x00\x00\x08\x03"), 0x803u);
  EXPECT_EQ(decode_be32("\x00\x00\xea\x60"), 60000u);
  EXPECT_EQ(decode_be64("\x40\x09\x21\xfb\x54\x44\x2d\x18"), 0x400921fb54442d18ull);  // pi
}

TEST(ByteCoding, SeededValuesRoundTripAgainstTheShiftOracle) {
  std::mt19937_64 random(15);
  for (int trial = 0; trial < 1000; ++trial) {
    const uint64_t value = random();
    unsigned char b[8];
    encode_le64(b, value);
    for (int i = 0; i < 8; ++i) ASSERT_EQ(b[i], (value >> (8 * i)) & 0xff);
    EXPECT_EQ(decode_le64(b), value);
    EXPECT_EQ(decode_le32(b), static_cast<uint32_t>(value));
    const size_t n = trial % 9;  // every length of pickle's LONG1
    EXPECT_EQ(decode_le(b, n), n == 8 ? value : value & ((uint64_t{1} << (8 * n)) - 1));
    unsigned char reversed[8];
    for (int i = 0; i < 8; ++i) reversed[i] = b[7 - i];
    EXPECT_EQ(decode_be64(reversed), value);
    EXPECT_EQ(decode_be32(reversed + 4), static_cast<uint32_t>(value));
  }
}

}  // namespace
}  // namespace ctmq
