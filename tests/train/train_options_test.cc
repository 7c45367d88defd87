#include "ctmq/train/train_options.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "ctmq/common/error.h"

namespace ctmq::train {
namespace {

TrainOptions options_with(int w_bits, const std::string& init, int64_t batch) {
  TrainOptions o;
  o.bits = {w_bits, w_bits};
  o.init = init;
  o.batch = batch;
  o.epochs = 20;
  return o;
}

TEST(ResolveHyperParameters, MethodDefaultsPerBitDepth) {
  auto fp = resolve_hyper_parameters(options_with(32, "none", 256), 10);
  EXPECT_EQ(fp.optimizer, OptimizerKind::kSgd);
  EXPECT_DOUBLE_EQ(fp.lr, 0.1);
  EXPECT_DOUBLE_EQ(fp.weight_decay, 1e-4);
  EXPECT_DOUBLE_EQ(fp.momentum, 0.9);
  EXPECT_EQ(fp.total_steps, 200);
  EXPECT_EQ(fp.warmup_steps, 0);

  auto w4 = resolve_hyper_parameters(options_with(4, "c1-fp", 256), 10);
  EXPECT_EQ(w4.optimizer, OptimizerKind::kSgd);
  EXPECT_DOUBLE_EQ(w4.lr, 0.01);  // fine-tuning
  EXPECT_DOUBLE_EQ(w4.weight_decay, 1e-4);

  auto w2 = resolve_hyper_parameters(options_with(2, "c1-w3a3", 256), 10);
  EXPECT_DOUBLE_EQ(w2.weight_decay, 5e-5);

  auto w1 = resolve_hyper_parameters(options_with(1, "c1-w2a2", 256), 10);
  EXPECT_EQ(w1.optimizer, OptimizerKind::kAdam);
  EXPECT_DOUBLE_EQ(w1.lr, 1e-3);
  EXPECT_DOUBLE_EQ(w1.weight_decay, 0.0);
}

TEST(ResolveHyperParameters, LinearScalingAndWarmupFollowTheGlobalBatch) {
  auto big = resolve_hyper_parameters(options_with(4, "c1-fp", 1024), 10);
  EXPECT_DOUBLE_EQ(big.lr, 0.04);
  EXPECT_EQ(big.warmup_steps, 10);  // one epoch (20 epochs / 10 > 1)
  auto small = resolve_hyper_parameters(options_with(32, "none", 64), 10);
  EXPECT_DOUBLE_EQ(small.lr, 0.025);
  EXPECT_EQ(small.warmup_steps, 0);
}

TEST(ResolveHyperParameters, ExplicitValuesWin) {
  auto o = options_with(1, "c1-w2a2", 1024);
  o.optimizer = OptimizerKind::kSgd;
  o.lr = 0.3;
  o.weight_decay = 0.0;
  o.warmup_epochs = 2.5;
  auto h = resolve_hyper_parameters(o, 4);
  EXPECT_EQ(h.optimizer, OptimizerKind::kSgd);
  EXPECT_DOUBLE_EQ(h.lr, 0.3);  // not scaled
  EXPECT_DOUBLE_EQ(h.weight_decay, 0.0);
  EXPECT_EQ(h.warmup_steps, 10);
}

// Bits out of range cannot reach validate(): BitDepths checks them when it is
// made (quant_options_test); ctmq-train names the flag.
TEST(Validate, BitDepthsAreValidByConstruction) {
  TrainOptions o;
  o.run_dir = "/tmp/x";
  o.stage = "c1-w9a9";
  o.train_manifest = "m.json";
  EXPECT_THROW((o.bits = {9, 4}), ctmq::Error);
  EXPECT_THROW((o.bits = {4, 0}), ctmq::Error);
  o.bits = {4, 32};
  EXPECT_NO_THROW(validate(o));
  o.stage = "../escape";
  EXPECT_THROW(validate(o), ctmq::Error);
}

// DDP's per-rank BatchNorm on GPUs by default; the synchronised statistics
// stay the default on CPUs; an explicit mode is never changed.
TEST(BatchNormSyncMode, AutoIsPerRankOnCudaAndMultiRankOnCpu) {
  EXPECT_EQ(TrainOptions{}.batch_norm_sync, BatchNormSync::kAuto);
  EXPECT_EQ(parse_batch_norm_sync("auto"), BatchNormSync::kAuto);
  EXPECT_EQ(resolve_batch_norm_sync(BatchNormSync::kAuto, DeviceKind::kCuda),
            BatchNormSync::kPerRank);
  EXPECT_EQ(resolve_batch_norm_sync(BatchNormSync::kAuto, DeviceKind::kCpu),
            BatchNormSync::kMultiRank);
  for (auto mode : {BatchNormSync::kMultiRank, BatchNormSync::kAlways, BatchNormSync::kPerRank}) {
    EXPECT_EQ(resolve_batch_norm_sync(mode, DeviceKind::kCuda), mode);
    EXPECT_EQ(resolve_batch_norm_sync(mode, DeviceKind::kCpu), mode);
  }
}

TEST(Validate, CollectiveTimeoutIsNotNegative) {
  TrainOptions o = options_with(32, "none", 64);
  o.run_dir = "run";
  o.stage = "c0-fp";
  o.train_manifest = "m.json";
  o.collective_timeout_s = -1;
  try {
    validate(o);
    FAIL() << "a negative collective timeout was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--collective-timeout -1 must be >= 0"), std::string::npos)
        << e.what();
  }
}

TEST(ParseOptions, RejectUnknownNames) {
  EXPECT_EQ(parse_optimizer_kind("adam"), OptimizerKind::kAdam);
  EXPECT_THROW(parse_optimizer_kind("rmsprop"), ctmq::Error);
  EXPECT_EQ(parse_device_kind("cuda"), DeviceKind::kCuda);
  EXPECT_THROW(parse_device_kind("tpu"), ctmq::Error);
}

}  // namespace
}  // namespace ctmq::train
