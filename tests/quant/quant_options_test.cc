#include "ctmq/quant/quant_options.h"

#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "ctmq/common/error.h"
#include "ctmq/quant/bit_depths.h"

namespace ctmq::quant {
namespace {

TEST(QuantOptions, ParsesEveryAcceptedName) {
  EXPECT_EQ(parse_weight_quantizer("dorefa"), WeightQuantizer::kDoReFa);
  EXPECT_EQ(parse_weight_quantizer("lsq"), WeightQuantizer::kLsq);
  EXPECT_EQ(parse_activation_quantizer("signed"), ActivationQuantizer::kSigned);
  EXPECT_EQ(parse_activation_quantizer("unsigned"), ActivationQuantizer::kUnsigned);
  EXPECT_EQ(parse_activation_quantizer("lsq"), ActivationQuantizer::kLsq);
  EXPECT_EQ(parse_granularity("per-tensor"), Granularity::kPerTensor);
  EXPECT_EQ(parse_granularity("per-channel"), Granularity::kPerChannel);
}

TEST(QuantOptions, UnknownNameErrorListsAcceptedValues) {
  try {
    parse_activation_quantizer("ternary");
    FAIL() << "no error";
  } catch (const ctmq::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'ternary'"), std::string::npos) << what;
    EXPECT_NE(what.find("signed, unsigned, lsq"), std::string::npos) << what;
  }
  EXPECT_THROW(parse_weight_quantizer("DoReFa"), ctmq::Error);
  EXPECT_THROW(parse_granularity("channel"), ctmq::Error);
}

TEST(BitDepths, TagsAndValidity) {
  EXPECT_EQ(BitDepths{}.tag(), "fp");
  EXPECT_EQ((BitDepths{1, 2}.tag()), "w1a2");
  EXPECT_EQ((BitDepths{4, 32}.tag()), "w4a32");
  EXPECT_TRUE(is_valid_bits(1));
  EXPECT_TRUE(is_valid_bits(8));
  EXPECT_TRUE(is_valid_bits(32));
  EXPECT_FALSE(is_valid_bits(0));
  EXPECT_FALSE(is_valid_bits(9));
  EXPECT_FALSE(is_valid_bits(16));
}

TEST(BitDepths, ConstructionRejectsInvalidDepthsNamingThem) {
  const BitDepths fp;
  EXPECT_EQ(fp, (BitDepths{32, 32}));
  EXPECT_NO_THROW((BitDepths{1, 8}));
  for (const auto& [w, a, named] : {std::tuple<int, int, const char*>{0, 4, "weight bit depth 0"},
                                    {9, 32, "weight bit depth 9"},
                                    {4, 16, "activation bit depth 16"},
                                    {32, -1, "activation bit depth -1"}}) {
    try {
      BitDepths bits{w, a};
      ADD_FAILURE() << bits.tag() << " accepted";
    } catch (const ctmq::Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(named), std::string::npos) << what;
      EXPECT_NE(what.find("1..8, or 32"), std::string::npos) << what;
    }
  }
}

}  // namespace
}  // namespace ctmq::quant
