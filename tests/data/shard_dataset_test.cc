// Round trip through ShardWriter/ShardDataset on real Fashion-MNIST records,
// and the reader's fault injection: every bad input is one clear error that
// names the file (and record).
#include "ctmq/data/shard_dataset.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/data/shard_format.h"
#include "data_test_util.h"

namespace ctmq::data {
namespace {

namespace fs = std::filesystem;

class ShardDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(in_dir());
    data_ = test::write_fashion_idx(in_dir(), kCount);
    manifest_ = build_shards(test::idx_build(in_dir(), out_dir(), 250));
  }
  std::string in_dir() const { return temp_.path() + "/in"; }
  std::string out_dir() const { return temp_.path() + "/out"; }
  std::string manifest_path() const { return out_dir() + "/manifest.json"; }
  std::string shard(int i) const { return out_dir() + "/" + shard_file_name(i); }

  static void flip_byte(const std::string& path, int64_t offset) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(offset);
    char c;
    f.get(c);
    f.seekp(offset);
    f.put(static_cast<char>(c ^ 0x10));
  }

  // The error message of `f`, or "" if it did not throw ctmq::Error.
  template <typename F>
  static std::string error_of(F f) {
    try {
      f();
    } catch (const ctmq::Error& e) {
      return e.what();
    }
    return "";
  }

  static constexpr int64_t kCount = 1000;
  ctmq::testing::TempDir temp_;
  ctmq::testing::LabelledImages data_;
  Manifest manifest_;
};

TEST_F(ShardDatasetTest, RoundTripMatchesTheIdxOracle) {
  ShardDataset dataset(manifest_path());
  ASSERT_EQ(dataset.size(), kCount);
  EXPECT_EQ(dataset.channels(), 1);
  EXPECT_EQ(dataset.height(), 28);
  EXPECT_EQ(dataset.width(), 28);
  EXPECT_EQ(manifest_.shards.size(), 4u);
  const int64_t max_label = data_.labels.max().item<int64_t>();
  EXPECT_EQ(dataset.num_classes(), max_label + 1);

  // Mean and std over all pixels, computed by torch from the oracle.
  auto pixels = data_.images.to(torch::kFloat64) / 255.0;
  const double mean = pixels.mean().item<double>();
  const double std = pixels.std(/*unbiased=*/false).item<double>();
  ASSERT_EQ(manifest_.mean.size(), 1u);
  EXPECT_NEAR(manifest_.mean[0], mean, 1e-9);
  EXPECT_NEAR(manifest_.std[0], std, 1e-9);

  // Random access in any order, with repeats, across shard boundaries.
  std::vector<int64_t> indices = {999, 0, 249, 250, 251, 500, 0, 777};
  Batch batch = dataset.get_batch(indices);
  ASSERT_EQ(batch.images.sizes(), (std::vector<int64_t>{8, 1, 28, 28}));
  EXPECT_EQ(batch.images.dtype(), torch::kFloat32);
  EXPECT_EQ(batch.labels.dtype(), torch::kInt64);
  auto index = torch::tensor(indices);
  auto expected = (data_.images.index_select(0, index).to(torch::kFloat32) / 255.0 - mean) / std;
  EXPECT_TRUE(torch::allclose(batch.images, expected, 1e-4, 1e-4));
  EXPECT_TRUE(torch::equal(batch.labels, data_.labels.index_select(0, index)));

  // Class counts agree with the labels.
  for (int64_t c = 0; c <= max_label; ++c) {
    EXPECT_EQ(manifest_.class_counts[c], (data_.labels == c).sum().item<int64_t>());
  }
  EXPECT_NO_THROW(verify_data_set(manifest_path()));
}

TEST_F(ShardDatasetTest, FlippedByteNamesFileAndRecord) {
  // Record 17 of shard 2 (data set index 517): flip one pixel bit.
  flip_byte(shard(2), kShardHeaderSize + 17 * record_size({1, 28, 28}) + 4 + 300);
  ShardDataset dataset(manifest_path());
  EXPECT_NO_THROW(dataset.get_batch({516, 518}));
  std::string message = error_of([&] { dataset.get_batch({3, 517}); });
  EXPECT_NE(message.find(shard_file_name(2)), std::string::npos) << message;
  EXPECT_NE(message.find("record 17"), std::string::npos) << message;
  EXPECT_NE(message.find("index 517"), std::string::npos) << message;
  message = error_of([&] { verify_data_set(manifest_path()); });
  EXPECT_NE(message.find("record 17"), std::string::npos) << message;
}

TEST_F(ShardDatasetTest, TruncatedShardIsRefusedOnOpen) {
  fs::resize_file(shard(1), fs::file_size(shard(1)) - 100);
  std::string message = error_of([&] { ShardDataset dataset(manifest_path()); });
  EXPECT_NE(message.find(shard_file_name(1)), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
}

TEST_F(ShardDatasetTest, MissingShardIsRefusedOnOpen) {
  fs::remove(shard(3));
  std::string message = error_of([&] { ShardDataset dataset(manifest_path()); });
  EXPECT_NE(message.find(shard_file_name(3)), std::string::npos) << message;
  EXPECT_NE(message.find("cannot be opened"), std::string::npos) << message;
}

TEST_F(ShardDatasetTest, ManifestPathOutsideItsDirectoryIsRefused) {
  for (const std::string& bad :
       std::vector<std::string>{"../out/" + shard_file_name(0), "/etc/passwd", "a/../../x"}) {
    Manifest m = manifest_;
    m.shards[0].path = bad;
    write_file_atomically(manifest_path(), manifest_to_json(m));
    std::string message = error_of([&] { ShardDataset dataset(manifest_path()); });
    EXPECT_NE(message.find("outside its directory"), std::string::npos) << bad << ": " << message;
    EXPECT_NE(message.find(manifest_path()), std::string::npos) << message;
  }
}

TEST_F(ShardDatasetTest, WrongMagicIsRefused) {
  {
    std::fstream f(shard(0), std::ios::in | std::ios::out | std::ios::binary);
    f.write("NOTASHRD", 8);
  }
  std::string message = error_of([&] { ShardDataset dataset(manifest_path()); });
  EXPECT_NE(message.find(shard_file_name(0)), std::string::npos) << message;
  EXPECT_NE(message.find("wrong magic"), std::string::npos) << message;
}

TEST_F(ShardDatasetTest, NewerShardVersionIsRefused) {
  // A well-formed header of a version newer than kShardVersion (with a correct header checksum).
  std::string header = read_file(shard(0)).substr(0, kShardHeaderSize);
  encode_le32(header.data() + 8, kShardVersion + 1);
  encode_le32(header.data() + 52, crc32_of(header.data(), 52));
  {
    std::fstream f(shard(0), std::ios::in | std::ios::out | std::ios::binary);
    f.write(header.data(), header.size());
  }
  std::string message = error_of([&] { ShardDataset dataset(manifest_path()); });
  EXPECT_NE(message.find("newer"), std::string::npos) << message;
  EXPECT_NE(message.find(shard_file_name(0)), std::string::npos) << message;
}

TEST_F(ShardDatasetTest, NewerManifestVersionIsRefused) {
  Manifest m = manifest_;
  m.version = kManifestVersion + 1;
  write_file_atomically(manifest_path(), manifest_to_json(m));
  std::string message = error_of([&] { ShardDataset dataset(manifest_path()); });
  EXPECT_NE(message.find("newer"), std::string::npos) << message;
  EXPECT_NE(message.find(manifest_path()), std::string::npos) << message;
}

TEST_F(ShardDatasetTest, ShardFileChecksumIsVerified) {
  // A byte flipped in a record's stored checksum is caught by both checks.
  flip_byte(shard(0), kShardHeaderSize + record_size({1, 28, 28}) - 1);
  std::string message = error_of([&] { verify_data_set(manifest_path()); });
  EXPECT_NE(message.find(shard_file_name(0)), std::string::npos) << message;
}

}  // namespace
}  // namespace ctmq::data
