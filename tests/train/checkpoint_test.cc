#include "ctmq/train/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "test_support.h"

namespace ctmq::train {
namespace {

// A model with parameters and buffers, trained a few steps so that the
// optimizer has momentum state worth saving.
struct Trained {
  torch::nn::Sequential net{torch::nn::Linear(4, 3), torch::nn::BatchNorm1d(3)};
  std::unique_ptr<torch::optim::SGD> sgd;
  explicit Trained(int seed, int steps) {
    torch::manual_seed(seed);
    net = torch::nn::Sequential(torch::nn::Linear(4, 3), torch::nn::BatchNorm1d(3));
    sgd = std::make_unique<torch::optim::SGD>(net->parameters(),
                                              torch::optim::SGDOptions(0.1).momentum(0.9));
    for (int i = 0; i < steps; ++i) step();
  }
  void step() {
    sgd->zero_grad();
    net->forward(torch::randn({8, 4})).pow(2).sum().backward();
    sgd->step();
  }
};

CheckpointMeta meta_at(int64_t step) {
  CheckpointMeta m;
  m.stage = "c1-w4a4";
  m.bits = {4, 4};
  m.architecture = "small-resnet";
  m.num_classes = 10;
  m.in_channels = 1;
  m.width = 8;
  m.epoch = 1;
  m.step_in_epoch = 2;
  m.global_step = step;
  m.world_size = 2;
  m.config = "[train]\nbatch = 64\n";
  return m;
}

void expect_same_state(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  auto ba = a.named_buffers(), bb = b.named_buffers();
  for (const auto& item : ba) EXPECT_TRUE(torch::equal(item.value(), bb[item.key()])) << item.key();
}

TEST(CheckpointStore, RoundTripRestoresModelOptimizerRngAndMeta) {
  ctmq::testing::TempDir dir;
  CheckpointStore store(dir.path() + "/checkpoints");
  Trained original(1, 3);
  store.save(meta_at(3), *original.net, *original.sgd);
  torch::manual_seed(77);  // the RNG state saved is the one at save time, before this
  auto loaded = store.load_newest_valid();
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->meta().stage, "c1-w4a4");
  EXPECT_EQ(loaded->meta().bits, (quant::BitDepths{4, 4}));
  EXPECT_EQ(loaded->meta().global_step, 3);
  EXPECT_EQ(loaded->meta().step_in_epoch, 2);
  EXPECT_EQ(loaded->meta().world_size, 2);
  EXPECT_EQ(loaded->meta().config, "[train]\nbatch = 64\n");
  EXPECT_FALSE(loaded->meta().torch_version.empty());

  // Continuing the original and a restored copy must give identical states:
  // only possible if momentum buffers and the RNG were restored exactly.
  Trained restored(2, 1);
  loaded->restore(*restored.net, *restored.sgd);
  expect_same_state(*original.net, *restored.net);
  torch::manual_seed(5);
  original.step();
  torch::manual_seed(5);
  restored.step();
  expect_same_state(*original.net, *restored.net);
}

TEST(CheckpointStore, KeepsOnlyTheNewestTwo) {
  ctmq::testing::TempDir dir;
  CheckpointStore store(dir.path());
  Trained t(1, 1);
  for (int64_t step : {2, 4, 6, 8}) store.save(meta_at(step), *t.net, *t.sgd);
  auto files = store.list();
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(std::filesystem::path(files[0]).filename(), "step-00000008.pt");
  EXPECT_EQ(std::filesystem::path(files[1]).filename(), "step-00000006.pt");
}

TEST(CheckpointStore, CorruptNewestFallsBackToPrevious) {
  ctmq::testing::TempDir dir;
  CheckpointStore store(dir.path());
  Trained t(1, 1);
  store.save(meta_at(4), *t.net, *t.sgd);
  t.step();
  const std::string newest = store.save(meta_at(8), *t.net, *t.sgd);
  // Flip one byte in the middle of the newest file.
  std::string bytes = read_file(newest);
  bytes[bytes.size() / 2] ^= 0x5a;
  write_file_atomically(newest, bytes);
  EXPECT_THROW(CheckpointStore::load(newest), ctmq::Error);
  auto loaded = store.load_newest_valid();
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->meta().global_step, 4);

  // A truncated newest file (power loss without the atomic rename) too.
  write_file_atomically(newest, bytes.substr(0, bytes.size() / 3));
  loaded = store.load_newest_valid();
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->meta().global_step, 4);
}

TEST(CheckpointStore, NoCheckpointGivesNullopt) {
  ctmq::testing::TempDir dir;
  CheckpointStore store(dir.path());
  EXPECT_FALSE(store.load_newest_valid().has_value());
  write_file_atomically(dir.path() + "/step-00000001.pt.tmp.99.0", "an interrupted write");
  EXPECT_FALSE(store.load_newest_valid().has_value());
}

// Regression: when every checkpoint was damaged the stage started again from
// its init (exit 0), silently discarding the progress they held.
TEST(CheckpointStore, EveryCheckpointDamagedIsAnErrorNotAFreshStart) {
  ctmq::testing::TempDir dir;
  CheckpointStore store(dir.path());
  write_file_atomically(dir.path() + "/step-00000001.pt", "not a checkpoint at all, clearly");
  try {
    store.load_newest_valid();
    FAIL() << "a damaged-only checkpoint directory was accepted";
  } catch (const ctmq::Error& e) {
    EXPECT_NE(std::string(e.what()).find("every checkpoint in " + dir.path() + " is damaged"),
              std::string::npos)
        << e.what();
  }
}

TEST(CheckpointStore, TemporariesOfInterruptedWritesAreRemoved) {
  ctmq::testing::TempDir dir;
  write_file_atomically(dir.path() + "/step-00000002.pt", "kept");
  write_file_atomically(dir.path() + "/step-00000004.pt.tmp.123.0", "left by kill -9");
  write_file_atomically(dir.path() + "/final.pt.tmp.77.3", "left by kill -9");
  EXPECT_EQ(remove_temporaries_in(dir.path()), 2);
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/step-00000002.pt"));
  EXPECT_EQ(remove_temporaries_in(dir.path()), 0);
  EXPECT_EQ(remove_temporaries_in(dir.path() + "/absent"), 0);
}

}  // namespace
}  // namespace ctmq::train
