#include "ctmq/common/enum_names.h"

#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>

#include "ctmq/common/error.h"
#include "ctmq/data/augment.h"
#include "ctmq/data/record_source.h"
#include "ctmq/data/shard_format.h"
#include "ctmq/dist/device.h"
#include "ctmq/model/network.h"
#include "ctmq/model/torchvision_import.h"
#include "ctmq/plan/plan_options.h"
#include "ctmq/plan/stage_plan.h"
#include "ctmq/quant/quant_options.h"
#include "ctmq/train/train_options.h"

namespace ctmq {
namespace {

enum class Colour { kRed, kGreen, kBlue };
constexpr EnumTable<Colour, 4> kColourNames{{
    {Colour::kRed, "red"},
    {Colour::kGreen, "green"},
    {Colour::kBlue, "blue"},
    {Colour::kRed, "RED"},  // alias
}};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// Every name parses to its value, every value's name parses back to it, and
// the names listed in an error are the table's names without aliases.
template <typename E, std::size_t N>
void expect_round_trip(const EnumTable<E, N>& table, const char* label) {
  std::set<std::string> names;
  for (const EnumName<E>& entry : table) {
    EXPECT_TRUE(names.insert(entry.name).second) << label << ": '" << entry.name << "' twice";
    EXPECT_EQ(parse_enum(table, entry.name, label), entry.value) << label << " " << entry.name;
    EXPECT_EQ(parse_enum(table, enum_name(table, entry.value), label), entry.value)
        << label << " " << entry.name;
  }
  const std::string message = error_of([&] { parse_enum(table, "no-such-name", label); });
  EXPECT_NE(message.find(std::string(label) +
                         " 'no-such-name' is not known; use one of: " + enum_choices(table)),
            std::string::npos)
      << message;
}

TEST(EnumNames, ParsesNamesAndAliasesAndNamesValues) {
  EXPECT_EQ(parse_enum(kColourNames, "green", "colour"), Colour::kGreen);
  EXPECT_EQ(parse_enum(kColourNames, "RED", "colour"), Colour::kRed);
  EXPECT_EQ(enum_name(kColourNames, Colour::kRed), "red");  // the first entry, not the alias
  EXPECT_EQ(enum_name(kColourNames, Colour::kBlue), "blue");
  EXPECT_EQ(enum_choices(kColourNames), "red, green, blue");
  EXPECT_THROW(enum_name(kColourNames, static_cast<Colour>(7)), std::logic_error);
}

TEST(EnumNames, UnknownNameErrorNamesTheValueAndListsTheChoices) {
  EXPECT_EQ(error_of([] { parse_enum(kColourNames, "Green", "--colour"); }),
            "--colour 'Green' is not known; use one of: red, green, blue");
  EXPECT_EQ(error_of([] { parse_enum(kColourNames, "", "colour", "red is the default"); }),
            "colour '' is not known; use one of: red, green, blue (red is the default)");
}

TEST(EnumNames, EveryTableRoundTrips) {
  expect_round_trip(model::kArchitectureNames, "architecture");
  expect_round_trip(model::kBlockNames, "block");
  expect_round_trip(model::kPretrainedClassifierNames, "pretrained-classifier");
  expect_round_trip(quant::kWeightQuantizerNames, "weight quantizer");
  expect_round_trip(quant::kActivationQuantizerNames, "activation quantizer");
  expect_round_trip(quant::kGranularityNames, "granularity");
  expect_round_trip(train::kOptimizerKindNames, "--optimizer");
  expect_round_trip(dist::kDeviceKindNames, "--device");
  expect_round_trip(train::kBatchNormSyncNames, "--sync-batch-norm");
  expect_round_trip(train::kDataOrderNames, "data order");
  expect_round_trip(data::kAugmentNames, "augmentation");
  expect_round_trip(data::kSourceKindNames, "--format");
  expect_round_trip(data::kSizePolicyNames, "--size-mismatch");
  expect_round_trip(data::kRecordKindNames, "--record");
  expect_round_trip(plan::kScheduleNames, "schedule");
  expect_round_trip(plan::kAccurateModelNames, "accurate");
  expect_round_trip(plan::kStageRoleNames, "role");
}

// The public parse/name functions are the tables' lookups.
TEST(EnumNames, PublicFunctionsUseTheTables) {
  for (const auto& e : model::kArchitectureNames) {
    EXPECT_EQ(model::parse_architecture(model::architecture_name(e.value)), e.value);
  }
  for (const auto& e : model::kBlockNames) {
    EXPECT_EQ(model::parse_block(model::block_name(e.value)), e.value);
  }
  for (const auto& e : model::kPretrainedClassifierNames) {
    EXPECT_EQ(model::parse_pretrained_classifier(model::pretrained_classifier_name(e.value)),
              e.value);
  }
  for (const auto& e : quant::kActivationQuantizerNames) {
    EXPECT_EQ(quant::parse_activation_quantizer(quant::activation_quantizer_name(e.value)),
              e.value);
  }
  for (const auto& e : train::kOptimizerKindNames) {
    EXPECT_EQ(train::parse_optimizer_kind(train::optimizer_kind_name(e.value)), e.value);
  }
  for (const auto& e : data::kAugmentNames) {
    EXPECT_EQ(data::parse_augment(data::augment_name(e.value)), e.value);
  }
  for (const auto& e : data::kSourceKindNames) {
    EXPECT_EQ(data::parse_source_kind(data::source_kind_name(e.value)), e.value);
  }
  for (const auto& e : data::kRecordKindNames) {
    EXPECT_EQ(data::parse_record_kind(data::record_kind_name(e.value)), e.value);
  }
  for (const auto& e : plan::kScheduleNames) {
    EXPECT_EQ(plan::parse_schedule(plan::schedule_name(e.value)), e.value);
  }
  EXPECT_EQ(plan::schedule_name(plan::parse_schedule("B")), "b");
  for (const auto& e : plan::kAccurateModelNames) {
    EXPECT_EQ(plan::parse_accurate_model(plan::accurate_model_name(e.value)), e.value);
  }
  for (const auto& e : plan::kStageRoleNames) {
    EXPECT_EQ(plan::parse_role(plan::role_name(e.value)), e.value);
  }
  EXPECT_EQ(error_of([] { dist::parse_device_kind("tpu"); }),
            "--device 'tpu' is not known; use one of: cpu, cuda");
  EXPECT_EQ(error_of([] { plan::parse_schedule("c"); }),
            "[plan] schedule 'c' is not known; use one of: a, b (a: full staircase every cycle; "
            "b: one staircase, then accurate <-> target)");
  EXPECT_EQ(error_of([] { quant::parse_granularity("channel"); }),
            "quantizer granularity 'channel' is not known; use one of: per-tensor, per-channel");
}

}  // namespace
}  // namespace ctmq
