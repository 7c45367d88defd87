// ShardFile, the one opener of shard files, on shards of real Fashion-MNIST
// records: header and size as written, the whole-file crc32 against zlib over
// the bytes read independently, and fault injection (missing, truncated,
// damaged index): one error naming the file.
#include "ctmq/data/shard_file.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "ctmq/common/atomic_file.h"
#include "ctmq/data/shard_writer.h"
#include "test_support.h"

namespace ctmq::data {
namespace {

namespace fs = std::filesystem;
using ctmq::testing::error_of;

constexpr int64_t kCount = 5;

// Writes the first kCount Fashion-MNIST training images as one shard whose
// records start at data set index 100: raw records, or (encoded) each
// image's raw bytes as its "file" (ShardFile does not decode records).
std::string write_shard(const std::string& dir, RecordKind kind) {
  const auto data = ctmq::testing::load_fashion_mnist_train(kCount);
  const std::string path = dir + "/" + shard_file_name(kind == RecordKind::kEncoded ? 1 : 0);
  ShardWriter writer(path, {1, 28, 28}, 100, kCount, 10, kind);
  for (int64_t i = 0; i < kCount; ++i) {
    const auto* pixels = data.images[i].data_ptr<uint8_t>();
    const auto label = static_cast<int32_t>(data.labels[i].item<int64_t>());
    if (kind == RecordKind::kFixed) {
      writer.add(label, pixels, "image " + std::to_string(i));
    } else {
      const std::string bytes(reinterpret_cast<const char*>(pixels), 28 * 28 - i);
      writer.add_encoded(label, bytes, pixels, 28, 28, "image " + std::to_string(i));
    }
  }
  writer.finish();
  return path;
}

TEST(ShardFile, OpensAFixedShardWithItsHeaderSizeAndFileChecksum) {
  ctmq::testing::TempDir dir;
  const std::string path = write_shard(dir.path(), RecordKind::kFixed);
  const ShardFile shard(path);
  EXPECT_EQ(shard.path(), path);
  EXPECT_EQ(shard.header().record(), RecordKind::kFixed);
  EXPECT_EQ(shard.header().shape, (ImageShape{1, 28, 28}));
  EXPECT_EQ(shard.header().record_count, static_cast<uint64_t>(kCount));
  EXPECT_EQ(shard.header().first_index, 100u);
  EXPECT_EQ(shard.file_size(), kShardHeaderSize + kCount * record_size({1, 28, 28}));
  const std::string bytes = read_file(path);
  EXPECT_EQ(shard.file_crc32(), crc32_of(bytes.data(), bytes.size()));
  std::string record(static_cast<size_t>(record_size({1, 28, 28})), '\0');
  shard.read_at(kShardHeaderSize, record.size(), record.data(), "record 0");
  EXPECT_EQ(record, bytes.substr(kShardHeaderSize, record.size()));
}

TEST(ShardFile, ReadsTheOffsetIndexOfAnEncodedShard) {
  ctmq::testing::TempDir dir;
  const std::string path = write_shard(dir.path(), RecordKind::kEncoded);
  ShardFile shard(path);
  ASSERT_EQ(shard.header().record(), RecordKind::kEncoded);
  shard.read_offset_index();
  ASSERT_EQ(shard.offsets().size(), static_cast<size_t>(kCount + 1));
  EXPECT_EQ(shard.offsets().front(), kShardHeaderSize);
  for (int64_t i = 0; i < kCount; ++i)  // label, image bytes (784 - i), crc32
    EXPECT_EQ(shard.offsets()[i + 1] - shard.offsets()[i], 4u + (28 * 28 - i) + 4u);
  EXPECT_EQ(shard.offsets().back() + encoded_index_size(kCount),
            static_cast<uint64_t>(shard.file_size()));
}

TEST(ShardFile, BadFilesAreRefusedNamingTheFile) {
  ctmq::testing::TempDir dir;
  const std::string missing = dir.path() + "/shard-00009.ctmq";
  std::string e = error_of([&] { ShardFile s(missing, "manifest M"); });
  EXPECT_NE(e.find("shard " + missing + " named by manifest M cannot be opened"), std::string::npos)
      << e;

  const std::string fixed = write_shard(dir.path(), RecordKind::kFixed);
  fs::resize_file(fixed, kShardHeaderSize - 1);
  e = error_of([&] { ShardFile s(fixed); });
  EXPECT_NE(e.find("shard " + fixed + ": only 63 bytes"), std::string::npos) << e;

  const std::string encoded = write_shard(dir.path(), RecordKind::kEncoded);
  std::string bytes = read_file(encoded);
  bytes[bytes.size() - 5] ^= 0x01;  // inside the last offset
  write_file_atomically(encoded, bytes);
  ShardFile shard(encoded);  // the header is intact
  e = error_of([&] { shard.read_offset_index(); });
  EXPECT_NE(e.find("shard " + encoded + ": offset index checksum mismatch"), std::string::npos)
      << e;
  e = error_of([&] {
    char out[8];
    shard.read_at(static_cast<uint64_t>(shard.file_size()) - 4, 8, out, "the tail");
  });
  EXPECT_NE(e.find("the tail cannot be read (short read)"), std::string::npos) << e;
}

}  // namespace
}  // namespace ctmq::data
