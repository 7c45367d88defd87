#include "ctmq/train/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>

namespace ctmq::train {
namespace {

TEST(LrSchedule, CosineMatchesClosedFormAndEndsAtZero) {
  LrSchedule schedule(0.1, Decay::kCosine, 0, 100);
  EXPECT_DOUBLE_EQ(schedule.at(0), 0.1);
  EXPECT_NEAR(schedule.at(50), 0.05, 1e-12);
  EXPECT_NEAR(schedule.at(25), 0.05 * (1 + std::cos(M_PI * 0.25)), 1e-12);
  EXPECT_NEAR(schedule.at(100), 0.0, 1e-12);
  for (int s = 1; s < 100; ++s) EXPECT_LT(schedule.at(s), schedule.at(s - 1));
}

TEST(LrSchedule, LinearDecayAfterWarmup) {
  LrSchedule schedule(1e-3, Decay::kLinear, 10, 110);
  EXPECT_NEAR(schedule.at(0), 1e-4, 1e-15);  // first warm-up step: base / warmup
  EXPECT_NEAR(schedule.at(4), 5e-4, 1e-15);
  EXPECT_NEAR(schedule.at(9), 1e-3, 1e-15);  // warm-up reaches the base rate
  EXPECT_NEAR(schedule.at(10), 1e-3, 1e-15);
  EXPECT_NEAR(schedule.at(60), 5e-4, 1e-15);
  EXPECT_NEAR(schedule.at(110), 0.0, 1e-15);
}

TEST(LrSchedule, SetLearningRateReachesEveryGroup) {
  auto weight = torch::zeros({2}, torch::requires_grad());
  HyperParameters h;
  h.optimizer = OptimizerKind::kAdam;
  h.lr = 1e-3;
  auto adam = make_optimizer(h, {weight});
  set_learning_rate(*adam, 0.25);
  EXPECT_DOUBLE_EQ(static_cast<torch::optim::AdamOptions&>(adam->param_groups()[0].options()).lr(),
                   0.25);
  h.optimizer = OptimizerKind::kSgd;
  auto sgd = make_optimizer(h, {weight});
  set_learning_rate(*sgd, 0.5);
  EXPECT_DOUBLE_EQ(static_cast<torch::optim::SGDOptions&>(sgd->param_groups()[0].options()).lr(),
                   0.5);
}

}  // namespace
}  // namespace ctmq::train
