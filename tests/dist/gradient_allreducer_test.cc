// GradientAllreducer and module broadcast against a fake communicator that
// records the collectives it is asked for (no MPI needed).
#include "ctmq/dist/gradient_allreducer.h"

#include <gtest/gtest.h>

#include "ctmq/dist/module_sync.h"
#include "ctmq/dist/single_process_communicator.h"

namespace ctmq::dist {
namespace {

// Pretends to be rank 0 of `ranks` identical ranks: a sum is the tensor
// times `ranks`. Records the sizes of the allreduced tensors.
class IdenticalRanks : public SingleProcessCommunicator {
 public:
  explicit IdenticalRanks(int ranks) : ranks_(ranks) {}
  int size() const override { return ranks_; }
  void allreduce_sum(std::vector<torch::Tensor>& tensors) override {
    for (auto& t : tensors) {
      reduced_sizes.push_back(t.numel());
      t.mul_(ranks_);
    }
  }
  void broadcast(std::vector<torch::Tensor>& tensors, int root) override {
    broadcast_count += static_cast<int>(tensors.size());
    EXPECT_EQ(root, 0);
  }
  std::vector<int64_t> reduced_sizes;
  int broadcast_count = 0;

 private:
  int ranks_;
};

TEST(GradientAllreducer, FusesParametersIntoBucketsInOrderAndAverages) {
  IdenticalRanks comm(4);
  // 10 + 30 floats = 160 bytes fill a 160-byte bucket; 50 floats (200 bytes)
  // get a bucket of their own; 7 more do not fit beside them.
  std::vector<torch::Tensor> params{
      torch::zeros({10}, torch::requires_grad()), torch::zeros({3, 10}, torch::requires_grad()),
      torch::zeros({50}, torch::requires_grad()), torch::zeros({5}),  // no gradient wanted: skipped
      torch::zeros({7}, torch::requires_grad())};
  for (auto& p : params) {
    if (p.requires_grad()) p.mutable_grad() = torch::randn(p.sizes());
  }
  std::vector<torch::Tensor> before;
  for (auto& p : params) before.push_back(p.requires_grad() ? p.grad().clone() : torch::Tensor());
  GradientAllreducer reducer(comm, params, 160);
  EXPECT_EQ(reducer.num_buckets(), 3);
  reducer.average_gradients();
  EXPECT_EQ(comm.reduced_sizes, (std::vector<int64_t>{40, 50, 7}));
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].requires_grad()) continue;
    // Identical ranks: the average is the rank's own gradient.
    EXPECT_TRUE(torch::allclose(params[i].grad(), before[i])) << "parameter " << i;
  }
}

TEST(GradientAllreducer, MissingGradientBecomesZeros) {
  IdenticalRanks comm(2);
  std::vector<torch::Tensor> params{torch::ones({3}, torch::requires_grad())};
  GradientAllreducer reducer(comm, params);
  reducer.average_gradients();
  ASSERT_TRUE(params[0].grad().defined());
  EXPECT_TRUE(torch::equal(params[0].grad(), torch::zeros({3})));
}

TEST(GradientAllreducer, OneRankDoesNothing) {
  SingleProcessCommunicator comm;
  std::vector<torch::Tensor> params{torch::ones({3}, torch::requires_grad())};
  params[0].mutable_grad() = torch::full({3}, 2.0f);
  GradientAllreducer(comm, params).average_gradients();
  EXPECT_TRUE(torch::equal(params[0].grad(), torch::full({3}, 2.0f)));
}

TEST(ModuleSync, BroadcastsEveryParameterAndBuffer) {
  IdenticalRanks comm(2);
  torch::nn::Sequential net(torch::nn::Conv2d(1, 2, 3), torch::nn::BatchNorm2d(2));
  broadcast_module_state(comm, *net);
  // conv weight + bias, bn weight + bias; running_mean, running_var, num_batches_tracked.
  EXPECT_EQ(comm.broadcast_count, 7);
  EXPECT_EQ(allreduce_sum_values(comm, {1.5, 2.0}), (std::vector<double>{3.0, 4.0}));
}

}  // namespace
}  // namespace ctmq::dist
