#include "ctmq/data/shard_format.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include "ctmq/common/error.h"

namespace ctmq::data {
namespace {

TEST(ShardFormat, HeaderRoundTripAndLayout) {
  ShardHeader h;
  h.shape = {3, 32, 31};
  h.record_count = 12345;
  h.first_index = (uint64_t{1} << 40) + 7;
  const std::string bytes = encode_shard_header(h);
  ASSERT_EQ(bytes.size(), kShardHeaderSize);
  EXPECT_EQ(bytes.substr(0, 8), "CTMQSHRD");
  // Little-endian fields at the documented offsets (docs/shard-format.md).
  EXPECT_EQ(decode_le32(bytes.data() + 8), 1u);
  EXPECT_EQ(decode_le32(bytes.data() + 16), 3u);
  EXPECT_EQ(decode_le32(bytes.data() + 20), 32u);
  EXPECT_EQ(decode_le32(bytes.data() + 24), 31u);
  EXPECT_EQ(static_cast<uint8_t>(bytes[32]), 12345 & 0xff);
  EXPECT_EQ(decode_le64(bytes.data() + 40), h.first_index);
  EXPECT_EQ(decode_le32(bytes.data() + 48), 4u + 3 * 32 * 31 + 4);
  EXPECT_EQ(decode_le32(bytes.data() + 52),
            static_cast<uint32_t>(::crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), 52)));
  ShardHeader back = decode_shard_header("x", bytes.data(), bytes.size());
  EXPECT_EQ(back.shape, h.shape);
  EXPECT_EQ(back.record_count, h.record_count);
  EXPECT_EQ(back.first_index, h.first_index);
}

TEST(ShardFormat, DamagedHeadersAreRefusedWithTheFileName) {
  ShardHeader h;
  h.shape = {1, 28, 28};
  h.record_count = 3;
  const std::string good = encode_shard_header(h);
  auto message = [](const std::string& bytes) {
    try {
      decode_shard_header("dir/s.ctmq", bytes.data(), bytes.size());
    } catch (const ctmq::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message(good.substr(0, 40)).find("truncated"), std::string::npos);
  std::string bad = good;
  bad[0] = 'X';
  EXPECT_NE(message(bad).find("wrong magic"), std::string::npos);
  bad = good;
  bad[33] ^= 1;  // record count changed, header crc no longer matches
  EXPECT_NE(message(bad).find("header checksum"), std::string::npos);
  bad = good;
  encode_le32(bad.data() + 8, 7);
  encode_le32(bad.data() + 52, crc32_of(bad.data(), 52));
  EXPECT_NE(message(bad).find("newer"), std::string::npos);
  EXPECT_NE(message(bad).find("dir/s.ctmq"), std::string::npos);
}

TEST(ShardFormat, Crc32MatchesZlibAndHexRoundTrips) {
  const std::string text = "123456789";
  EXPECT_EQ(crc32_of(text.data(), text.size()), 0xcbf43926u);  // the CRC-32 check value
  EXPECT_EQ(crc32_of(text.data() + 4, 5, crc32_of(text.data(), 4)), 0xcbf43926u);
  EXPECT_EQ(crc32_hex(0xcbf43926u), "cbf43926");
  EXPECT_EQ(parse_crc32_hex("cbf43926", "x"), 0xcbf43926u);
  EXPECT_THROW(parse_crc32_hex("CBF43926", "x"), ctmq::Error);
  EXPECT_THROW(parse_crc32_hex("cbf4392", "x"), ctmq::Error);
  EXPECT_EQ(shard_file_name(12), "shard-00012.ctmq");
}

}  // namespace
}  // namespace ctmq::data
