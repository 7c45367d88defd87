// Slices and merge: a job array gives the same shards and the same manifest
// bytes as one process; merge refuses missing or foreign slices; nothing
// complete is ever overwritten.
#include "ctmq/data/shard_builder.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "data_test_util.h"

namespace ctmq::data {
namespace {

namespace fs = std::filesystem;

class ShardBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(in());
    test::write_fashion_idx(in(), 700);
  }
  std::string in() const { return temp_.path() + "/in"; }
  std::string out(const std::string& name) const { return temp_.path() + "/" + name; }
  ShardBuildOptions slice(const std::string& dir, int index, int count) const {
    ShardBuildOptions o = test::idx_build(in(), dir, 100);
    o.step = BuildStep::kSlice;
    o.array_index = index;
    o.array_count = count;
    return o;
  }
  ShardBuildOptions merge(const std::string& dir, int count) const {
    ShardBuildOptions o = test::idx_build(in(), dir, 100);
    o.step = BuildStep::kMerge;
    o.array_count = count;
    return o;
  }
  std::string error_of(const ShardBuildOptions& o) {
    try {
      build_shards(o);
    } catch (const ctmq::Error& e) {
      return e.what();
    }
    return "";
  }
  ctmq::testing::TempDir temp_;
};

TEST(SliceRange, CoversEveryShardOnceInOrder) {
  for (int64_t shards : {1, 3, 7, 12}) {
    for (int count : {1, 2, 4, 5}) {
      int64_t next = 0;
      for (int i = 0; i < count; ++i) {
        int64_t b, e;
        slice_range(shards, i, count, b, e);
        EXPECT_EQ(b, next);
        EXPECT_LE(b, e);
        next = e;
      }
      EXPECT_EQ(next, shards);
    }
  }
}

TEST_F(ShardBuilderTest, FourSliceArrayEqualsOneProcessByteForByte) {
  Manifest one = build_shards(test::idx_build(in(), out("one"), 100));
  EXPECT_EQ(one.shards.size(), 7u);
  for (int i : {3, 1, 0, 2}) build_shards(slice(out("array"), i, 4));  // any order
  EXPECT_FALSE(fs::exists(out("array") + "/manifest.json"));
  build_shards(merge(out("array"), 4));
  EXPECT_EQ(read_file(out("one") + "/manifest.json"), read_file(out("array") + "/manifest.json"));
  for (int s = 0; s < 7; ++s) {
    EXPECT_EQ(read_file(out("one") + "/" + shard_file_name(s)),
              read_file(out("array") + "/" + shard_file_name(s)));
  }
}

TEST_F(ShardBuilderTest, MergeRefusesAMissingSliceAndNamesIt) {
  for (int i : {0, 1, 3}) build_shards(slice(out("a"), i, 4));
  std::string message = error_of(merge(out("a"), 4));
  // Task 2 of 4 owns shards [3, 5) of 7.
  EXPECT_NE(message.find("shard 3 (array task 2 of 4)"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(out("a") + "/manifest.json"));
  build_shards(slice(out("a"), 2, 4));
  EXPECT_NO_THROW(build_shards(merge(out("a"), 4)));
}

TEST_F(ShardBuilderTest, MergeRefusesATruncatedShard) {
  for (int i = 0; i < 2; ++i) build_shards(slice(out("a"), i, 2));
  const std::string shard = out("a") + "/" + shard_file_name(5);
  fs::resize_file(shard, fs::file_size(shard) - 1);
  std::string message = error_of(merge(out("a"), 2));
  EXPECT_NE(message.find(shard_file_name(5)), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(out("a") + "/manifest.json"));
  // Rerunning the slice replaces the damaged shard and keeps the good ones.
  const auto untouched = fs::last_write_time(out("a") + "/" + shard_file_name(4));
  build_shards(slice(out("a"), 1, 2));
  EXPECT_EQ(fs::last_write_time(out("a") + "/" + shard_file_name(4)), untouched);
  EXPECT_NO_THROW(build_shards(merge(out("a"), 2)));
  EXPECT_NO_THROW(verify_data_set(out("a") + "/manifest.json"));
}

TEST_F(ShardBuilderTest, MergeRemovesTemporaryFilesOfKilledTasks) {
  build_shards(slice(out("a"), 0, 1));
  const std::string stale = out("a") + "/" + shard_file_name(2) + ".tmp.12345.0";
  write_file_atomically(stale, "half a shard");
  build_shards(merge(out("a"), 1));
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(out("a") + "/" + shard_file_name(2)));
}

TEST_F(ShardBuilderTest, MergeRefusesSlicesOfAnotherBuild) {
  build_shards(slice(out("a"), 0, 1));
  ShardBuildOptions other = merge(out("a"), 1);
  other.records_per_shard = 200;  // another plan
  std::string message = error_of(other);
  EXPECT_NE(message.find("not complete"), std::string::npos) << message;
}

TEST_F(ShardBuilderTest, CompleteOutputIsNeverOverwritten) {
  build_shards(test::idx_build(in(), out("a"), 100));
  const std::string before = read_file(out("a") + "/manifest.json");
  const auto shard_time = fs::last_write_time(out("a") + "/" + shard_file_name(0));
  for (ShardBuildOptions o :
       {test::idx_build(in(), out("a"), 100), slice(out("a"), 0, 2), merge(out("a"), 2)}) {
    std::string message = error_of(o);
    EXPECT_NE(message.find("already holds a complete data set"), std::string::npos) << message;
  }
  EXPECT_EQ(read_file(out("a") + "/manifest.json"), before);
  EXPECT_EQ(fs::last_write_time(out("a") + "/" + shard_file_name(0)), shard_time);
}

TEST_F(ShardBuilderTest, BadInputLeavesNoManifestAndNoTemporaryFiles) {
  fs::resize_file(in() + "/images.idx", 16 + 784 * 650);
  std::string message = error_of(test::idx_build(in(), out("a"), 100));
  EXPECT_NE(message.find("record 650"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(out("a") + "/manifest.json"));
  for (const auto& entry : fs::directory_iterator(out("a"))) {
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
  }
}

}  // namespace
}  // namespace ctmq::data
