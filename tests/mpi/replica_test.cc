// Replicas across 2 ranks: the check that they agree, the reconciliation of
// per-rank BatchNorm statistics, and a trainer whose ranks keep one model
// with per-rank BatchNorm and LSQ's data-dependent step initialisation.
#include <gtest/gtest.h>

#include <filesystem>

#include "ctmq/dist/module_sync.h"
#include "ctmq/train/trainer.h"
#include "mpi/mpi_test_main.h"
#include "test_support.h"
#include "train/train_test_support.h"

namespace ctmq::train {
namespace {

using ctmq::testing::mpi_context;

// True on every rank when every rank's parameters equal rank 0's, bit for bit.
bool parameters_agree(dist::Communicator& comm, const torch::nn::Module& module) {
  bool same = true;
  for (const auto& p : module.parameters()) {
    std::vector<torch::Tensor> root{p.detach().clone()};
    comm.broadcast(root, 0);
    same = same && torch::equal(root[0], p.detach());
  }
  return !comm.any(!same);
}

TEST(ReplicaCheck, NamesTheRankWhoseWeightsDiffer) {
  auto& comm = mpi_context();
  ASSERT_EQ(comm.size(), 2);
  torch::manual_seed(3);
  torch::nn::Sequential net(torch::nn::Conv2d(1, 2, 3), torch::nn::BatchNorm2d(2));
  dist::check_replicas_agree(comm, *net, "the start");  // same seed: same weights
  if (comm.rank() == 1) {
    torch::NoGradGuard no_grad;
    net->parameters()[0].view(-1)[0].add_(1e-6f);
  }
  try {
    dist::check_replicas_agree(comm, *net, "the checkpoint at step 7");
    FAIL() << "differing replicas passed the check";
  } catch (const std::exception& e) {  // on both ranks: nobody waits for a peer that threw
    const std::string m = e.what();
    EXPECT_NE(m.find("the checkpoint at step 7"), std::string::npos) << m;
    EXPECT_NE(m.find("rank(s) 1 of 2"), std::string::npos) << m;
  }
}

TEST(ReplicaCheck, AverageBuffersGivesEveryRankTheMeanAndLeavesParameters) {
  auto& comm = mpi_context();
  torch::manual_seed(4);
  torch::nn::Sequential net(torch::nn::Conv2d(1, 2, 3), torch::nn::BatchNorm2d(2));
  auto bn = net->ptr(1)->as<torch::nn::BatchNorm2d>();
  bn->running_mean.fill_(comm.rank() == 0 ? 1.0 : 3.0);
  bn->running_var.fill_(comm.rank() == 0 ? 0.5 : 1.5);
  bn->num_batches_tracked.fill_(5);
  const torch::Tensor weight = net->parameters()[0].detach().clone();
  dist::average_buffers(comm, *net);
  EXPECT_TRUE(torch::equal(bn->running_mean, torch::full({2}, 2.0f)));
  EXPECT_TRUE(torch::equal(bn->running_var, torch::full({2}, 1.0f)));
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 5);
  EXPECT_TRUE(torch::equal(net->parameters()[0], weight));
  dist::check_replicas_agree(comm, *net, "after averaging");
}

// Per-rank BatchNorm (the default on CUDA) with LSQ activations: the input
// steps are initialised from the first batch, which differs per rank; they
// must come from the global batch or the ranks train different models. Before
// the fix only synchronised BatchNorm installed the sum over ranks.
TEST(ReplicaCheck, PerRankBatchNormWithLsqKeepsOneModel) {
  auto& comm = mpi_context();
  ASSERT_EQ(comm.size(), 2);
  const std::string run = ctmq::testing::shared_dir(comm, "replica-lsq");
  TrainOptions o = ctmq::testing::small_resnet_stage(run, {4, 4}, /*width=*/8, /*images=*/128,
                                                     /*epochs=*/1, /*batch=*/32, /*seed=*/9,
                                                     /*checkpoint_every=*/2, /*log_every=*/1);
  o.batch_norm_sync = BatchNormSync::kPerRank;
  o.model.quant.activation = quant::ActivationQuantizer::kLsq;
  o.model.quant.weight = quant::WeightQuantizer::kLsq;
  int64_t checked = 0;
  // Running statistics of the last step before the end-of-stage
  // reconciliation, summed over ranks.
  std::vector<torch::Tensor> running_sum;
  std::vector<std::string> running_names;
  o.after_step_replica = [&](int64_t step, torch::nn::Module& replica) {
    EXPECT_TRUE(parameters_agree(comm, replica)) << "replicas differ after step " << step;
    ++checked;
    if (step != 4) return;
    running_sum.clear();
    running_names.clear();
    for (const auto& b : replica.named_buffers()) {
      if (b.key().find("running_mean") == std::string::npos) continue;
      running_names.push_back(b.key());
      running_sum.push_back(b.value().detach().to(torch::kFloat64).clone());
    }
    comm.allreduce_sum(running_sum);
  };
  const StageResult result = train_stage(o, comm);  // throws if a checkpoint's check fails
  ASSERT_EQ(result.outcome, StageOutcome::kCompleted);
  EXPECT_EQ(checked, 4);
  // The saved running means are the ranks' mean, not rank 0's own.
  ASSERT_FALSE(running_names.empty());
  const auto saved = ctmq::testing::final_state(run, o.stage);
  for (size_t i = 0; i < running_names.size(); ++i) {
    const torch::Tensor mean = saved.at(running_names[i]).to(torch::kFloat64);
    EXPECT_TRUE(torch::allclose(mean, running_sum[i] / 2, 1e-6, 1e-7)) << running_names[i];
  }
  comm.barrier();
  if (comm.rank() == 0) std::filesystem::remove_all(run);
}

// Bad input on several ranks: more ranks than samples is refused on every
// rank with one message, and no run directory is left behind (the
// shared-directory check before it creates nothing).
TEST(TrainerOnTwoRanks, MoreRanksThanSamplesFailsWithNothingWritten) {
  auto& comm = mpi_context();
  const std::string run = ctmq::testing::shared_dir(comm, "too-few-samples");
  TrainOptions o = ctmq::testing::small_resnet_stage(run, {32, 32}, /*width=*/4, /*images=*/1,
                                                     /*epochs=*/1, /*batch=*/2, /*seed=*/1,
                                                     /*checkpoint_every=*/0, /*log_every=*/1);
  const std::string e = ctmq::testing::error_of([&] { train_stage(o, comm); });
  EXPECT_NE(e.find("2 ranks but only 1 training samples"), std::string::npos) << e;
  comm.barrier();
  EXPECT_FALSE(std::filesystem::exists(run));
}

}  // namespace
}  // namespace ctmq::train
