// json_integer: integers from JSON files only when they are integers in range
// (a float cast to an integer type was undefined behaviour found by fuzzing).
#include "ctmq/common/json_integer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace ctmq {
namespace {

using nlohmann::json;

TEST(JsonInteger, AcceptsIntegersInRange) {
  EXPECT_EQ(json_integer<int64_t>(json::parse("42")), 42);
  EXPECT_EQ(json_integer<int64_t>(json::parse("-7")), -7);
  EXPECT_EQ(json_integer<uint32_t>(json::parse("4294967295")), 4294967295u);
  EXPECT_EQ(json_integer<uint64_t>(json::parse("18446744073709551615")),
            std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(json_integer<int64_t>(json::parse("-9223372036854775808")),
            std::numeric_limits<int64_t>::min());
}

TEST(JsonInteger, RefusesFloatsOutOfRangeAndOtherTypes) {
  // The packed-model fuzzer's crash: a float far beyond uint64_t.
  EXPECT_FALSE(json_integer<uint64_t>(json::parse("2.66667e+62")));
  EXPECT_FALSE(json_integer<int64_t>(json::parse("3.0")));
  EXPECT_FALSE(json_integer<int64_t>(json::parse("9223372036854775808")));
  EXPECT_FALSE(json_integer<uint32_t>(json::parse("4294967296")));
  EXPECT_FALSE(json_integer<uint64_t>(json::parse("-1")));
  EXPECT_FALSE(json_integer<int32_t>(json::parse("-2147483649")));
  EXPECT_FALSE(json_integer<int64_t>(json::parse("\"5\"")));
  EXPECT_FALSE(json_integer<int64_t>(json::parse("null")));
  EXPECT_FALSE(json_integer<int64_t>(json::parse("true")));
}

TEST(JsonInteger, ArraysAndOptionalKeys) {
  EXPECT_EQ(json_integers<int64_t>(json::parse("[1, 2, 3]")), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_FALSE(json_integers<int64_t>(json::parse("[1, 2.5]")));
  EXPECT_FALSE(json_integers<int64_t>(json::parse("{\"a\": 1}")));
  const json record = json::parse(R"({"step": 4, "epoch": 1e300})");
  EXPECT_EQ(json_integer_or<int64_t>(record, "step", -1), 4);
  EXPECT_EQ(json_integer_or<int64_t>(record, "missing", -1), -1);
  EXPECT_FALSE(json_integer_or<int64_t>(record, "epoch", -1));
}

}  // namespace
}  // namespace ctmq
