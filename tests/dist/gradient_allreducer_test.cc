// GradientAllreducer and module broadcast against a fake communicator that
// records the collectives it is asked for (no MPI needed).
#include "ctmq/dist/gradient_allreducer.h"

#include <gtest/gtest.h>

#include "ctmq/dist/module_sync.h"
#include "ctmq/dist/single_process_communicator.h"

namespace ctmq::dist {
namespace {

// Pretends to be rank 0 of `ranks` identical ranks: a sum is the tensor
// times `ranks`. Records the sizes of the allreduced floating-point tensors
// (the gradient buckets); integer ones (the first step's census of used
// parameters) are only counted.
class IdenticalRanks : public SingleProcessCommunicator {
 public:
  explicit IdenticalRanks(int ranks) : ranks_(ranks) {}
  int size() const override { return ranks_; }
  void allreduce_sum(std::vector<torch::Tensor>& tensors) override {
    for (auto& t : tensors) {
      if (t.is_floating_point()) {
        reduced_sizes.push_back(t.numel());
      } else {
        ++integer_reductions;
      }
      t.mul_(ranks_);
    }
  }
  void broadcast(std::vector<torch::Tensor>& tensors, int root) override {
    broadcast_count += static_cast<int>(tensors.size());
    EXPECT_EQ(root, 0);
  }
  std::vector<int64_t> reduced_sizes;
  int integer_reductions = 0;
  int broadcast_count = 0;

 private:
  int ranks_;
};

TEST(GradientAllreducer, FusesParametersIntoBucketsInBackwardOrderAndAverages) {
  IdenticalRanks comm(4);
  // Buckets fill from the last parameter (backward's order): 7 floats, then
  // 50 (200 bytes) do not fit beside them in 160 bytes and get a bucket of
  // their own, then 30 + 10 floats = 160 bytes fill one.
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
  EXPECT_EQ(comm.reduced_sizes, (std::vector<int64_t>{7, 50, 40}));
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].requires_grad()) continue;
    // Identical ranks: the average is the rank's own gradient.
    EXPECT_TRUE(torch::allclose(params[i].grad(), before[i])) << "parameter " << i;
  }
}

TEST(GradientAllreducer, OneRankDoesNothing) {
  SingleProcessCommunicator comm;
  std::vector<torch::Tensor> params{torch::ones({3}, torch::requires_grad())};
  params[0].mutable_grad() = torch::full({3}, 2.0f);
  GradientAllreducer(comm, params).average_gradients();
  EXPECT_TRUE(torch::equal(params[0].grad(), torch::full({3}, 2.0f)));
}

// A small network of three layers; its parameters' gradients come from one
// backward pass of a fixed batch.
struct SmallNet {
  SmallNet() {
    torch::manual_seed(3);
    net = torch::nn::Sequential(torch::nn::Linear(8, 16), torch::nn::ReLU(),
                                torch::nn::Linear(16, 16), torch::nn::ReLU(),
                                torch::nn::Linear(16, 4));
    input = torch::randn({5, 8});
  }
  torch::Tensor loss() { return net->forward(input).pow(2).sum(); }
  torch::nn::Sequential net{nullptr};
  torch::Tensor input;
};

TEST(GradientAllreducer, OverlappedStartsBucketsDuringBackwardWithTheSameResult) {
  SmallNet a, b;  // identical networks
  IdenticalRanks after_comm(3), overlap_comm(3);
  // 64-byte buckets: about one tensor each, so backward completes several
  // buckets before it ends.
  GradientAllreducer after(after_comm, a.net->parameters(), 64, /*overlap=*/false);
  GradientAllreducer overlapped(overlap_comm, b.net->parameters(), 64, /*overlap=*/true);
  ASSERT_FALSE(after.overlapping());
  ASSERT_TRUE(overlapped.overlapping());
  ASSERT_GT(overlapped.num_buckets(), 3);
  a.loss().backward();
  b.loss().backward();
  // The overlapped reducer started every bucket from the hooks (the last one
  // when the first layer's gradients came in), the other none yet.
  EXPECT_TRUE(after_comm.reduced_sizes.empty());
  EXPECT_EQ(static_cast<int64_t>(overlap_comm.reduced_sizes.size()), overlapped.num_buckets());
  after.average_gradients();
  overlapped.average_gradients();
  EXPECT_EQ(after_comm.reduced_sizes, overlap_comm.reduced_sizes);  // same buckets, same order
  const auto pa = a.net->parameters(), pb = b.net->parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::equal(pa[i].grad(), pb[i].grad())) << "parameter " << i;
  }
  // The next step starts afresh.
  for (auto& p : pb) p.mutable_grad().zero_();
  b.loss().backward();
  overlapped.average_gradients();
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::equal(pa[i].grad(), pb[i].grad())) << "second step, parameter " << i;
  }
}

TEST(GradientAllreducer, OverlappedRefusesTwoBackwardPassesInOneStep) {
  SmallNet s;
  IdenticalRanks comm(2);
  GradientAllreducer reducer(comm, s.net->parameters(), 64, /*overlap=*/true);
  s.loss().backward();
  try {
    s.loss().backward();
    FAIL() << "a second backward pass before averaging was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("overlap-allreduce = false"), std::string::npos)
        << e.what();
  }
}

// A parameter no rank uses (LSQ's weight step at 32 or 1 bit): in the first
// step it contributes zeros; then it is dropped, its gradient left undefined
// as on one rank (an optimizer skips it: no weight decay), and the bucket it
// held starts during backward from the second step on.
class UnusedParameter : public ::testing::TestWithParam<bool> {};

TEST_P(UnusedParameter, IsDroppedAfterTheFirstStep) {
  const bool overlap = GetParam();
  IdenticalRanks comm(2);
  std::vector<torch::Tensor> params{torch::ones({3}, torch::requires_grad()),
                                    torch::ones({2}, torch::requires_grad())};
  GradientAllreducer reducer(comm, params, 1 << 20, overlap);
  ASSERT_EQ(reducer.num_buckets(), 1);
  (params[0] * 2).sum().backward();  // params[1] gets no gradient
  EXPECT_TRUE(comm.reduced_sizes.empty()) << "the bucket waited for the unused parameter";
  reducer.average_gradients();
  EXPECT_EQ(comm.reduced_sizes, (std::vector<int64_t>{5}));  // zeros for params[1]
  EXPECT_EQ(comm.integer_reductions, 1);                     // the census, first step only
  EXPECT_TRUE(torch::equal(params[0].grad(), torch::full({3}, 2.0f)));
  EXPECT_FALSE(params[1].grad().defined());
  EXPECT_EQ(reducer.num_dropped(), 1);

  // Second step: a bucket of params[0] alone, started by its hook when overlapping.
  params[0].mutable_grad().zero_();
  (params[0] * 3).sum().backward();
  if (overlap) EXPECT_EQ(comm.reduced_sizes, (std::vector<int64_t>{5, 3}));
  reducer.average_gradients();
  EXPECT_EQ(comm.reduced_sizes, (std::vector<int64_t>{5, 3}));
  EXPECT_EQ(comm.integer_reductions, 1);
  EXPECT_TRUE(torch::equal(params[0].grad(), torch::full({3}, 3.0f)));
  EXPECT_FALSE(params[1].grad().defined());

  // A dropped parameter that gets a gradient later is an error, not a silent
  // un-averaged update.
  params[0].mutable_grad().zero_();
  (params[0].sum() + params[1].sum()).backward();
  try {
    reducer.average_gradients();
    FAIL() << "a gradient of a dropped parameter was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("no rank gave it one in the first step"),
              std::string::npos)
        << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Schedules, UnusedParameter, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Overlapped" : "AfterBackward";
                         });

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
