#include "ctmq/data/manifest.h"

#include <gtest/gtest.h>

#include "ctmq/common/error.h"

namespace ctmq::data {
namespace {

Manifest example() {
  Manifest m;
  m.source_json = R"({"kind":"idx","inputs":["a","b"]})";
  m.shape = {1, 2, 2};
  m.count = 3;
  m.records_per_shard = 2;
  m.class_names = {"x", "y"};
  m.class_counts = {2, 1};
  // Pixels: 12 values 0, 255, ... -> sum and sum of squares.
  m.pixel_sum = {6 * 255};
  m.pixel_sum_squares = {6ull * 255 * 255};
  m.shards = {{"shard-00000.ctmq", 0, 2, 100, 0xdeadbeef}, {"shard-00001.ctmq", 2, 1, 60, 1}};
  compute_normalisation(m);
  return m;
}

TEST(Manifest, NormalisationFromExactSums) {
  Manifest m = example();
  // Half the 12 pixels are 255, half 0: mean 0.5, std 0.5 on the [0, 1] scale.
  EXPECT_DOUBLE_EQ(m.mean[0], 0.5);
  EXPECT_DOUBLE_EQ(m.std[0], 0.5);
}

TEST(Manifest, JsonRoundTripIsByteStable) {
  Manifest m = example();
  const std::string text = manifest_to_json(m);
  Manifest back = parse_manifest(text, "m.json");
  EXPECT_EQ(manifest_to_json(back), text);
  EXPECT_EQ(back.shards[0].crc32, 0xdeadbeefu);
  EXPECT_EQ(back.class_names, m.class_names);
  EXPECT_NE(text.find("\"crc32\": \"deadbeef\""), std::string::npos);
}

TEST(Manifest, ShardPathsMustStayInside) {
  for (const char* ok : {"shard-00000.ctmq", "sub/shard.ctmq", "./shard.ctmq"}) {
    EXPECT_NO_THROW(check_path_inside(ok, "m.json")) << ok;
  }
  for (const char* bad : {"", "/abs/shard.ctmq", "../shard.ctmq", "sub/../../shard.ctmq", ".."}) {
    EXPECT_THROW(check_path_inside(bad, "m.json"), ctmq::Error) << bad;
  }
}

TEST(Manifest, InconsistentManifestsAreRefused) {
  Manifest m = example();
  m.count = 4;  // shards hold 3
  EXPECT_THROW(parse_manifest(manifest_to_json(m), "m.json"), ctmq::Error);
  m = example();
  m.shards[1].first_index = 3;  // a gap
  EXPECT_THROW(parse_manifest(manifest_to_json(m), "m.json"), ctmq::Error);
  EXPECT_THROW(parse_manifest("{not json", "m.json"), ctmq::Error);
  EXPECT_THROW(parse_manifest(R"({"format":"other"})", "m.json"), ctmq::Error);
  std::string text = manifest_to_json(example());
  text.replace(text.find("\"count\""), 7, "\"cnt\"  ");
  try {
    parse_manifest(text, "m.json");
    FAIL();
  } catch (const ctmq::Error& e) {
    EXPECT_NE(std::string(e.what()).find("m.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace ctmq::data
