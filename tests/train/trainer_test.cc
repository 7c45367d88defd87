// train_stage on real Fashion-MNIST: resume after preemption or a crash is
// bit-exact, a corrupt newest checkpoint falls back to the previous one, and
// bad input fails clearly without touching the run directory.
#include "ctmq/train/trainer.h"

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/common/preemption.h"
#include "ctmq/common/run_layout.h"
#include "ctmq/dist/single_process_communicator.h"
#include "ctmq/model/weights_io.h"
#include "ctmq/train/checkpoint.h"
#include "test_support.h"
#include "train/train_test_support.h"

namespace ctmq::train {
namespace {
namespace fs = std::filesystem;

// 256 images, global batch 32: 8 steps per epoch, 16 steps in 2 epochs.
TrainOptions tiny_stage(const std::string& run_dir, quant::BitDepths bits = {32, 32}) {
  TrainOptions o = ctmq::testing::small_resnet_stage(run_dir, bits, /*width=*/4, /*images=*/256,
                                                     /*epochs=*/2, /*batch=*/32, /*seed=*/11,
                                                     /*checkpoint_every=*/4, /*log_every=*/4);
  o.resolved_config = "batch = 32\n";
  return o;
}

std::map<std::string, torch::Tensor> final_state(const TrainOptions& o) {
  return ctmq::testing::final_state(o.run_dir, o.stage);
}

void expect_bit_identical(const std::map<std::string, torch::Tensor>& a,
                          const std::map<std::string, torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (const auto& [name, tensor] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_TRUE(torch::equal(tensor, b.at(name))) << name << " differs";
  }
}

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override { reset_preemption_request(); }
  void TearDown() override { reset_preemption_request(); }
  dist::SingleProcessCommunicator comm_;
  ctmq::testing::TempDir dir_;
};

TEST_F(TrainerTest, CompletesAndWritesFinalMetricsConfigAndDone) {
  TrainOptions o = tiny_stage(dir_.path() + "/run");
  o.lr = 0.2;
  StageResult r = train_stage(o, comm_);
  EXPECT_EQ(r.outcome, StageOutcome::kCompleted);
  EXPECT_EQ(r.global_step, 16);
  RunLayout layout(o.run_dir);
  EXPECT_TRUE(layout.is_done(o.stage));
  EXPECT_TRUE(fs::exists(layout.final_weights(o.stage)));
  EXPECT_EQ(read_file(layout.stage_config(o.stage)), "batch = 32\n");
  // One metrics record per 4 steps, global steps 4, 8, 12, 16.
  std::string metrics = read_file(layout.metrics(o.stage));
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 4);
  EXPECT_NE(metrics.find("\"global_step\":16"), std::string::npos);
  EXPECT_GT(r.last_loss, 0.0);
  // It learned something on real data: below chance (ln 10 = 2.30).
  EXPECT_LT(r.last_loss, 2.2);
  EXPECT_GT(r.last_accuracy, 0.2);

  // A DONE stage is left alone.
  auto before = fs::last_write_time(layout.final_weights(o.stage));
  EXPECT_EQ(train_stage(o, comm_).outcome, StageOutcome::kAlreadyDone);
  EXPECT_EQ(fs::last_write_time(layout.final_weights(o.stage)), before);
}

TEST_F(TrainerTest, PreemptedThenResumedEqualsUninterruptedBitExact) {
  const quant::BitDepths w4a4{4, 4};
  TrainOptions reference = tiny_stage(dir_.path() + "/reference", w4a4);
  ASSERT_EQ(train_stage(reference, comm_).outcome, StageOutcome::kCompleted);

  TrainOptions o = tiny_stage(dir_.path() + "/preempted", w4a4);
  o.after_step = [](int64_t step) {
    if (step == 6) std::raise(SIGUSR1);
  };
  StageResult first = train_stage(o, comm_);
  EXPECT_EQ(first.outcome, StageOutcome::kPreempted);
  EXPECT_EQ(first.global_step, 6);
  RunLayout layout(o.run_dir);
  EXPECT_FALSE(layout.is_done(o.stage));
  EXPECT_FALSE(fs::exists(layout.final_weights(o.stage)));
  EXPECT_TRUE(fs::exists(layout.checkpoints(o.stage) + "/step-00000006.pt"));

  reset_preemption_request();
  o.after_step = nullptr;
  StageResult second = train_stage(o, comm_);
  EXPECT_EQ(second.outcome, StageOutcome::kCompleted);
  EXPECT_EQ(second.resumed_from, 6);
  expect_bit_identical(final_state(reference), final_state(o));
  // metrics.jsonl has each logged step once.
  std::string metrics = read_file(layout.metrics(o.stage));
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 4);
}

TEST_F(TrainerTest, AugmentedStagePreemptedThenResumedEqualsUninterruptedBitExact) {
  TrainOptions reference = tiny_stage(dir_.path() + "/reference", {2, 2});
  reference.augment = data::Augment::kCropFlip;
  ASSERT_EQ(train_stage(reference, comm_).outcome, StageOutcome::kCompleted);
  TrainOptions plain = tiny_stage(dir_.path() + "/plain", {2, 2});
  ASSERT_EQ(train_stage(plain, comm_).outcome, StageOutcome::kCompleted);

  TrainOptions o = reference;
  o.run_dir = dir_.path() + "/preempted";
  o.after_step = [](int64_t step) {
    if (step == 11) std::raise(SIGUSR1);  // mid-epoch (8 steps per epoch)
  };
  EXPECT_EQ(train_stage(o, comm_).outcome, StageOutcome::kPreempted);
  reset_preemption_request();
  o.after_step = nullptr;
  EXPECT_EQ(train_stage(o, comm_).resumed_from, 11);
  expect_bit_identical(final_state(reference), final_state(o));
  // The augmentation did change what was trained on.
  EXPECT_FALSE(
      torch::equal(final_state(reference).at("fc.weight"), final_state(plain).at("fc.weight")));
}

// The loader's workers produce the batches ahead (data::BatchLoader): the
// stage must equal the serial loop's, also when resumed mid-epoch.
TEST_F(TrainerTest, LoaderWorkersPreemptedThenResumedEqualSerialLoaderBitExact) {
  TrainOptions serial = tiny_stage(dir_.path() + "/serial", {2, 2});
  serial.augment = data::Augment::kCropFlip;
  serial.loader_workers = 0;
  ASSERT_EQ(train_stage(serial, comm_).outcome, StageOutcome::kCompleted);

  TrainOptions o = serial;
  o.run_dir = dir_.path() + "/workers";
  o.loader_workers = 3;
  o.after_step = [](int64_t step) {
    if (step == 11) std::raise(SIGUSR1);  // mid-epoch, with batches 12.. prefetched
  };
  EXPECT_EQ(train_stage(o, comm_).outcome, StageOutcome::kPreempted);
  reset_preemption_request();
  o.after_step = nullptr;
  EXPECT_EQ(train_stage(o, comm_).resumed_from, 11);
  expect_bit_identical(final_state(serial), final_state(o));
  // Each record says how long the step waited for data.
  std::string metrics = read_file(RunLayout(o.run_dir).metrics(o.stage));
  EXPECT_NE(metrics.find("\"data_wait_s\":"), std::string::npos);
  EXPECT_NE(metrics.find("\"epoch_data_wait_s\":"), std::string::npos);
}

TEST_F(TrainerTest, EachStageDrawsItsOwnDataOrderUnlessShared) {
  for (DataOrder order : {DataOrder::kPerStage, DataOrder::kShared}) {
    const std::string run = dir_.path() + (order == DataOrder::kShared ? "/shared" : "/per-stage");
    TrainOptions a = tiny_stage(run);
    a.stage = "c1-fp";
    a.data_order = order;
    TrainOptions b = a;
    b.stage = "c2-fp";
    ASSERT_EQ(train_stage(a, comm_).outcome, StageOutcome::kCompleted);
    ASSERT_EQ(train_stage(b, comm_).outcome, StageOutcome::kCompleted);
    // Same init (seed), same options: only the data order can differ.
    const bool same = torch::equal(final_state(a).at("fc.weight"), final_state(b).at("fc.weight"));
    EXPECT_EQ(same, order == DataOrder::kShared) << (same ? "same" : "different") << " weights";
  }
  EXPECT_NE(stage_data_seed(0, "c1-w2a2", DataOrder::kPerStage),
            stage_data_seed(0, "c2-w2a2", DataOrder::kPerStage));
  EXPECT_EQ(stage_data_seed(9, "c1-w2a2", DataOrder::kShared), 9u);
}

TEST_F(TrainerTest, DistillationFromTheAccurateModelChangesTrainingOnlyWithWeight) {
  const std::string run = dir_.path() + "/run";
  TrainOptions fp = tiny_stage(run);
  fp.stage = "c0-fp";
  fp.epochs = 1;
  ASSERT_EQ(train_stage(fp, comm_).outcome, StageOutcome::kCompleted);
  auto student = [&](const std::string& stage, const std::string& teacher, double weight) {
    TrainOptions o = tiny_stage(run, {2, 2});
    o.stage = stage;
    o.init = "c0-fp";
    o.data_order = DataOrder::kShared;
    o.distill_from = teacher;
    o.distill_weight = weight;
    EXPECT_EQ(train_stage(o, comm_).outcome, StageOutcome::kCompleted);
    return ctmq::testing::final_state(run, stage).at("fc.weight");
  };
  const torch::Tensor plain = student("plain", "none", 1.0);
  const torch::Tensor zero = student("zero", "c0-fp", 0.0);
  const torch::Tensor full = student("full", "c0-fp", 1.0);
  EXPECT_TRUE(torch::allclose(plain, zero, 0, 1e-6));
  EXPECT_FALSE(torch::allclose(plain, full, 0, 1e-4));
}

TEST_F(TrainerTest, CrashThenCorruptNewestCheckpointFallsBackAndStaysBitExact) {
  const quant::BitDepths w1a1{1, 1};  // Adam, binary quantizers
  TrainOptions reference = tiny_stage(dir_.path() + "/reference", w1a1);
  ASSERT_EQ(train_stage(reference, comm_).outcome, StageOutcome::kCompleted);

  TrainOptions o = tiny_stage(dir_.path() + "/crashed", w1a1);
  o.after_step = [](int64_t step) {
    if (step == 10) throw std::runtime_error("simulated crash");
  };
  EXPECT_THROW(train_stage(o, comm_), std::runtime_error);
  RunLayout layout(o.run_dir);
  CheckpointStore store(layout.checkpoints(o.stage));
  ASSERT_EQ(store.list().size(), 2u);  // steps 8 and 4
  // Corrupt the newest (step 8): the resume must fall back to step 4.
  std::string bytes = read_file(store.list()[0]);
  bytes[bytes.size() / 3] ^= 0x01;
  write_file_atomically(store.list()[0], bytes);

  o.after_step = nullptr;
  StageResult resumed = train_stage(o, comm_);
  EXPECT_EQ(resumed.outcome, StageOutcome::kCompleted);
  EXPECT_EQ(resumed.resumed_from, 4);
  expect_bit_identical(final_state(reference), final_state(o));
}

TEST_F(TrainerTest, CheckpointOfAnotherArchitectureIsRefusedAndKept) {
  TrainOptions o = tiny_stage(dir_.path() + "/run");
  o.after_step = [](int64_t step) {
    if (step == 5) throw std::runtime_error("simulated crash");
  };
  EXPECT_THROW(train_stage(o, comm_), std::runtime_error);
  RunLayout layout(o.run_dir);
  const std::string checkpoint = layout.checkpoints(o.stage) + "/step-00000004.pt";
  const std::string saved = read_file(checkpoint);
  o.after_step = nullptr;
  o.model.width = 8;
  try {
    train_stage(o, comm_);
    FAIL() << "a checkpoint of width 4 was accepted for width 8";
  } catch (const ctmq::Error& e) {
    EXPECT_NE(std::string(e.what()).find("width 4"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(checkpoint), saved);
  EXPECT_FALSE(layout.is_done(o.stage));
}

TEST_F(TrainerTest, InitFromWeightsOfAnotherClassCountOrArchitectureFails) {
  TrainOptions source = tiny_stage(dir_.path() + "/run");
  source.model.architecture = model::Architecture::kResNet20;
  source.epochs = 1;
  source.stage = "c0-fp";
  ASSERT_EQ(train_stage(source, comm_).outcome, StageOutcome::kCompleted);

  TrainOptions o = tiny_stage(dir_.path() + "/run", {4, 4});
  o.init = "c0-fp";  // resnet20 weights into a small-resnet
  EXPECT_THROW(train_stage(o, comm_), ctmq::Error);
  EXPECT_FALSE(fs::exists(RunLayout(o.run_dir).stage(o.stage)));
}

TEST_F(TrainerTest, BadInputFailsBeforeWritingAnything) {
  const std::string run = dir_.path() + "/run";
  auto expect_error = [&](TrainOptions o, const std::string& fragment) {
    try {
      train_stage(o, comm_);
      ADD_FAILURE() << "accepted; expected an error containing '" << fragment << "'";
    } catch (const ctmq::Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(run)) << "the run directory was written";
  };
  TrainOptions missing = tiny_stage(run);
  missing.train_manifest = dir_.path() + "/nowhere/manifest.json";
  expect_error(missing, "does not exist");

  TrainOptions not_done = tiny_stage(run, {2, 2});
  not_done.init = "c1-w3a3";
  expect_error(not_done, "is not DONE");

  TrainOptions teacher = tiny_stage(run, {2, 2});
  teacher.distill_from = "c0-fp";
  expect_error(teacher, "is not DONE");

  // Bit depths are checked where they are made (quant/bit_depths.h): an
  // activation depth of 12 never reaches train_stage.
  try {
    TrainOptions bits = tiny_stage(run);
    bits.bits = {4, 12};
    ADD_FAILURE() << "bit depths 4/12 accepted";
  } catch (const ctmq::Error& e) {
    EXPECT_NE(std::string(e.what()).find("activation bit depth 12"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(run)) << "the run directory was written";

  TrainOptions batch = tiny_stage(run);
  batch.batch = 512;  // more than the 256 samples
  expect_error(batch, "exceeds");
}

// A communicator that claims more ranks than there are samples; train_stage
// must refuse before its first collective.
}  // namespace
}  // namespace ctmq::train
