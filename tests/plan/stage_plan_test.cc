#include "ctmq/plan/stage_plan.h"

#include <gtest/gtest.h>

#include <numeric>

#include "ctmq/common/error.h"

namespace ctmq::plan {
namespace {

std::vector<std::string> names(const StagePlan& plan) {
  std::vector<std::string> out;
  for (const Stage& s : plan.stages) out.push_back(s.name);
  return out;
}

// Every init is "none", external, or an earlier stage; indices are positions.
void expect_well_formed(const StagePlan& plan) {
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    const Stage& s = plan.stages[i];
    EXPECT_EQ(s.index, static_cast<int>(i));
    if (i == 0) continue;
    const Stage* init = plan.find(s.init);
    ASSERT_NE(init, nullptr) << s.name << " init " << s.init;
    EXPECT_LT(init->index, s.index) << s.name;
  }
}

TEST(StagePlanTest, DefaultIsReadingAWithFullStaircaseEveryCycleAndBaselines) {
  PlanOptions o;
  StagePlan plan = make_plan(o);
  expect_well_formed(plan);
  std::vector<std::string> expected = {
      "c0-fp",   "c1-w4a4", "c1-w3a3", "c1-w2a2",          "c1-w1a1",       "c2-fp",
      "c2-w4a4", "c2-w3a3", "c2-w2a2", "c2-w1a1",          "c3-fp",         "c3-w4a4",
      "c3-w3a3", "c3-w2a2", "c3-w1a1", "base-direct-w1a1", "base-step-w1a1"};
  EXPECT_EQ(names(plan), expected);
  // Each step starts from the previous stage: a one-bit change.
  EXPECT_EQ(plan.find("c1-w4a4")->init, "c0-fp");
  EXPECT_EQ(plan.find("c2-fp")->init, "c1-w1a1");
  EXPECT_EQ(plan.find("c2-w4a4")->init, "c2-fp");
  EXPECT_EQ(plan.find("c1-w1a1")->role, StageRole::kResult);
  EXPECT_EQ(plan.find("c1-w2a2")->role, StageRole::kStep);
  EXPECT_EQ(plan.find("c2-fp")->role, StageRole::kAccurate);
  EXPECT_TRUE(plan.find("c2-fp")->bits.full_precision());
  EXPECT_EQ(plan.find("c1-w3a3")->bits, (quant::BitDepths{3, 3}));
  EXPECT_EQ(plan.find("c0-fp")->epochs, o.epochs_pretrain);
  // The direct baseline gets the epochs of every CTMQ stage after c0.
  int ctmq_epochs = 0;
  for (const Stage& s : plan.stages)
    if (s.cycle > 0) ctmq_epochs += s.epochs;
  EXPECT_EQ(ctmq_epochs, 3 * 4 * o.epochs_step + 2 * o.epochs_accurate);
  EXPECT_EQ(plan.find("base-direct-w1a1")->epochs, ctmq_epochs);
  EXPECT_EQ(plan.find("base-direct-w1a1")->init, "c0-fp");
  EXPECT_EQ(plan.find("base-step-w1a1")->epochs, o.epochs_step);
  EXPECT_EQ(plan.find("base-step-w1a1")->bits, (quant::BitDepths{1, 1}));
}

TEST(StagePlanTest, ResultEpochsApplyToTheLastCycleOnlyAndCountForTheDirectBaseline) {
  PlanOptions o;
  o.k_start = 2;
  o.cycles = 2;
  o.epochs_step = 1;
  o.epochs_accurate = 1;
  o.epochs_result = 5;
  StagePlan plan = make_plan(o);
  EXPECT_EQ(plan.find("c1-w1a1")->epochs, 1);  // cycle 1's result: a step like the others
  EXPECT_EQ(plan.find("c2-w1a1")->epochs, 5);  // the chain's final result
  EXPECT_EQ(plan.find("c2-w2a2")->epochs, 1);
  // c1-w2a2 1 + c1-w1a1 1 + c2-fp 1 + c2-w2a2 1 + c2-w1a1 5 = 9.
  EXPECT_EQ(plan.find("base-direct-w1a1")->epochs, 9);
  EXPECT_EQ(plan.find("base-step-w1a1")->epochs, 1);
  o.epochs_result = -1;
  EXPECT_THROW(make_plan(o), Error);
}

TEST(StagePlanTest, RestartControlRepeatsTheTargetWithCtmqsEpochsAndRestarts) {
  PlanOptions o;
  o.k_start = 2;
  o.cycles = 2;
  o.epochs_step = 1;
  o.epochs_accurate = 2;
  o.epochs_result = 3;
  o.restart_control = true;
  StagePlan plan = make_plan(o);
  expect_well_formed(plan);
  // CTMQ after c0: c1-w2a2 (1), c1-w1a1 (1), c2-fp (2), c2-w2a2 (1), c2-w1a1 (3).
  const std::vector<int> epochs = {1, 1, 2, 1, 3};
  std::string previous = "c0-fp";
  for (size_t i = 0; i < epochs.size(); ++i) {
    const Stage* s = plan.find("base-restart-w1a1-" + std::to_string(i + 1));
    ASSERT_NE(s, nullptr) << i;
    EXPECT_EQ(s->bits, (quant::BitDepths{1, 1}));
    EXPECT_EQ(s->epochs, epochs[i]);
    EXPECT_EQ(s->init, previous);
    EXPECT_EQ(s->role, StageRole::kBaseline);
    previous = s->name;
  }
  EXPECT_EQ(plan.find("base-restart-w1a1-6"), nullptr);
  EXPECT_EQ(plan.stages.back().name, "base-restart-w1a1-5");
  o.restart_control = false;
  EXPECT_EQ(make_plan(o).find("base-restart-w1a1-1"), nullptr);
}

TEST(StagePlanTest, AccurateTeacherIsTheCyclesAccurateModel) {
  PlanOptions o;
  o.k_start = 2;
  o.cycles = 2;
  o.restart_control = true;
  StagePlan plan = make_plan(o);
  EXPECT_EQ(accurate_teacher(plan, "c0-fp"), "");
  EXPECT_EQ(accurate_teacher(plan, "c1-w2a2"), "c0-fp");
  EXPECT_EQ(accurate_teacher(plan, "c1-w1a1"), "c0-fp");
  EXPECT_EQ(accurate_teacher(plan, "c2-fp"), "");
  EXPECT_EQ(accurate_teacher(plan, "c2-w1a1"), "c2-fp");
  EXPECT_EQ(accurate_teacher(plan, "base-direct-w1a1"), "c0-fp");
  EXPECT_EQ(accurate_teacher(plan, "base-restart-w1a1-3"), "c0-fp");
  EXPECT_THROW(accurate_teacher(plan, "c9-w1a1"), Error);
}

TEST(StagePlanTest, ReadingBAlternatesAccurateAndTargetAfterOneStaircase) {
  PlanOptions o;
  o.schedule = Schedule::kB;
  o.baselines = false;
  StagePlan plan = make_plan(o);
  expect_well_formed(plan);
  std::vector<std::string> expected = {"c0-fp", "c1-w4a4", "c1-w3a3", "c1-w2a2", "c1-w1a1",
                                       "c2-fp", "c2-w1a1", "c3-fp",   "c3-w1a1"};
  EXPECT_EQ(names(plan), expected);
  EXPECT_EQ(plan.find("c3-w1a1")->init, "c3-fp");
  EXPECT_EQ(plan.find("c3-w1a1")->role, StageRole::kResult);
  EXPECT_EQ(plan.find("c3-w1a1")->step, 1);
}

TEST(StagePlanTest, AccurateKStartResumesTheStaircaseBelowIt) {
  PlanOptions o;
  o.accurate = AccurateModel::kKStart;
  o.k_start = 3;
  o.cycles = 2;
  o.baselines = false;
  StagePlan plan = make_plan(o);
  std::vector<std::string> expected = {"c0-fp",   "c1-w3a3", "c1-w2a2", "c1-w1a1",
                                       "c2-w3a3", "c2-w2a2", "c2-w1a1"};
  EXPECT_EQ(names(plan), expected);
  EXPECT_EQ(plan.find("c2-w3a3")->role, StageRole::kAccurate);
  EXPECT_EQ(plan.find("c2-w3a3")->init, "c1-w1a1");
  EXPECT_EQ(plan.find("c2-w3a3")->epochs, o.epochs_accurate);
}

TEST(StagePlanTest, AccurateKPlusOneIsOneBitAboveTheTarget) {
  PlanOptions o;
  o.accurate = AccurateModel::kKPlusOne;
  o.k_start = 4;
  o.k_target = 2;
  o.cycles = 2;
  o.baselines = false;
  StagePlan plan = make_plan(o);
  std::vector<std::string> expected = {"c0-fp",   "c1-w4a4", "c1-w3a3",
                                       "c1-w2a2", "c2-w3a3", "c2-w2a2"};
  EXPECT_EQ(names(plan), expected);
  EXPECT_EQ(plan.find("c2-w3a3")->role, StageRole::kAccurate);
  EXPECT_EQ(plan.find("c2-w2a2")->role, StageRole::kResult);
}

TEST(StagePlanTest, StepSizeAlwaysEndsAtTheTarget) {
  PlanOptions o;
  o.k_start = 8;
  o.k_target = 1;
  o.step = 3;
  o.cycles = 1;
  o.baselines = false;
  std::vector<std::string> expected = {"c0-fp", "c1-w8a8", "c1-w5a5", "c1-w2a2", "c1-w1a1"};
  EXPECT_EQ(names(make_plan(o)), expected);
}

TEST(StagePlanTest, FixedActivationBitsAndPretrainedInit) {
  PlanOptions o;
  o.k_start = 2;
  o.cycles = 1;
  o.a_bits = 4;
  o.pretrained = "torchvision:/models/resnet18.pt";
  o.epochs_pretrain = 1;
  StagePlan plan = make_plan(o);
  std::vector<std::string> expected = {"c0-fp", "c1-w2a4", "c1-w1a4", "base-direct-w1a4",
                                       "base-step-w1a4"};
  EXPECT_EQ(names(plan), expected);
  EXPECT_EQ(plan.stages[0].init, "torchvision:/models/resnet18.pt");
  EXPECT_EQ(plan.stages[0].epochs, 1);
  EXPECT_EQ(plan.find("c1-w1a4")->bits, (quant::BitDepths{1, 4}));
}

TEST(StagePlanTest, OneStepOneCycleHasOnlyTheDirectBaseline) {
  PlanOptions o;
  o.k_start = 1;
  o.cycles = 1;
  std::vector<std::string> expected = {"c0-fp", "c1-w1a1", "base-direct-w1a1"};
  EXPECT_EQ(names(make_plan(o)), expected);
}

// Each invalid option gives a ctmq::Error whose message names the option.
void expect_error_naming(const PlanOptions& o, const std::string& option) {
  try {
    make_plan(o);
    ADD_FAILURE() << "expected an error naming " << option;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(option), std::string::npos) << e.what();
  }
}

TEST(StagePlanTest, InvalidOptionsAreClearErrors) {
  PlanOptions o;
  o.k_target = 5;  // above k_start = 4
  expect_error_naming(o, "k-target");
  o = PlanOptions();
  o.step = 0;
  expect_error_naming(o, "step");
  o = PlanOptions();
  o.cycles = 0;
  expect_error_naming(o, "cycles");
  o = PlanOptions();
  o.k_start = 9;
  expect_error_naming(o, "k-start");
  o = PlanOptions();
  o.k_start = o.k_target = 1;
  o.accurate = AccurateModel::kKStart;
  expect_error_naming(o, "accurate");
  o = PlanOptions();
  o.pretrained = "resnet18.pt";
  expect_error_naming(o, "pretrained");
  o = PlanOptions();
  o.epochs_pretrain = 0;  // ctmq-train needs at least one epoch
  expect_error_naming(o, "epochs-pretrain");
}

TEST(PlanOptionsTest, ParsersAcceptDocumentedValuesAndRejectOthers) {
  EXPECT_EQ(parse_schedule("a"), Schedule::kA);
  EXPECT_EQ(parse_schedule("b"), Schedule::kB);
  EXPECT_THROW(parse_schedule("c"), Error);
  EXPECT_EQ(parse_accurate_model("k-plus-one"), AccurateModel::kKPlusOne);
  EXPECT_THROW(parse_accurate_model("k+1"), Error);
  EXPECT_EQ(parse_activation_bits("same"), 0);
  EXPECT_EQ(parse_activation_bits("4"), 4);
  EXPECT_EQ(parse_activation_bits("32"), 32);
  EXPECT_THROW(parse_activation_bits("9"), Error);
  EXPECT_THROW(parse_activation_bits("4x"), Error);
}

}  // namespace
}  // namespace ctmq::plan
