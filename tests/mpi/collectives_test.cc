// Collectives of MpiContext on 2 ranks: sums, broadcasts, agreement, and the
// gradient averaging of GradientAllreducer checked against a direct oracle.
#include <gtest/gtest.h>

#include "ctmq/dist/gradient_allreducer.h"
#include "ctmq/dist/module_sync.h"
#include "mpi/mpi_test_main.h"

namespace ctmq::dist {
namespace {

using ctmq::testing::mpi_context;

TEST(MpiCollectives, RunsOnTwoRanks) {
  ASSERT_EQ(mpi_context().size(), 2) << "run under mpirun -n 2";
  EXPECT_GE(mpi_context().local_rank(), 0);
}

TEST(MpiCollectives, AllreduceSumOfEveryDtype) {
  auto& comm = mpi_context();
  const int r = comm.rank(), n = comm.size();
  std::vector<torch::Tensor> tensors{torch::arange(5, torch::kFloat32) * (r + 1),
                                     torch::full({2, 3}, r + 0.5, torch::kFloat64),
                                     torch::full({4}, int64_t{1} << (40 + r), torch::kInt64)};
  comm.allreduce_sum(tensors);
  const double rank_sum = n * (n + 1) / 2.0;  // sum of (r + 1)
  EXPECT_TRUE(torch::equal(tensors[0], torch::arange(5, torch::kFloat32) * rank_sum));
  EXPECT_DOUBLE_EQ(tensors[1][1][2].item<double>(), n * (n - 1) / 2.0 + 0.5 * n);
  int64_t expected = 0;
  for (int i = 0; i < n; ++i) expected += int64_t{1} << (40 + i);
  EXPECT_EQ(tensors[2][3].item<int64_t>(), expected);
}

TEST(MpiCollectives, BroadcastCopiesRootTensorsOfAnyDtype) {
  auto& comm = mpi_context();
  for (int root = 0; root < comm.size(); ++root) {
    std::vector<torch::Tensor> tensors{torch::full({3, 2}, comm.rank() * 10.f + 1),
                                       torch::full({2}, int64_t{comm.rank() + 7})};
    comm.broadcast(tensors, root);
    EXPECT_TRUE(torch::equal(tensors[0], torch::full({3, 2}, root * 10.f + 1)));
    EXPECT_TRUE(torch::equal(tensors[1], torch::full({2}, int64_t{root + 7})));
  }
}

TEST(MpiCollectives, AnyIsTrueEverywhereWhenOneRankSaysSo) {
  auto& comm = mpi_context();
  EXPECT_FALSE(comm.any(false));
  EXPECT_TRUE(comm.any(true));
  EXPECT_TRUE(comm.any(comm.rank() == comm.size() - 1));
  comm.barrier();
}

TEST(MpiCollectives, SumValuesOverRanks) {
  auto& comm = mpi_context();
  auto sums = allreduce_sum_values(comm, {1.0, static_cast<double>(comm.rank())});
  EXPECT_DOUBLE_EQ(sums[0], comm.size());
  EXPECT_DOUBLE_EQ(sums[1], comm.size() * (comm.size() - 1) / 2.0);
}

TEST(MpiCollectives, BroadcastModuleStateMakesReplicasEqual) {
  auto& comm = mpi_context();
  torch::manual_seed(100 + comm.rank());  // different init on each rank
  torch::nn::Sequential net(torch::nn::Conv2d(3, 4, 3), torch::nn::BatchNorm2d(4));
  net->ptr(1)->as<torch::nn::BatchNorm2d>()->running_mean.fill_(comm.rank() + 1.0);
  broadcast_module_state(comm, *net);
  // Every rank now holds rank 0's state: compare with a sum over ranks.
  for (auto& t : net->parameters()) {
    std::vector<torch::Tensor> sum{t.detach().clone()};
    comm.allreduce_sum(sum);
    EXPECT_TRUE(torch::equal(sum[0], t.detach() * comm.size()));
  }
  EXPECT_TRUE(
      torch::equal(net->ptr(1)->as<torch::nn::BatchNorm2d>()->running_mean, torch::ones({4})));
}

TEST(MpiCollectives, GradientAllreducerAveragesAcrossSmallBuckets) {
  auto& comm = mpi_context();
  // Parameters of mixed sizes; a 64-byte bucket limit forces several buckets.
  std::vector<torch::Tensor> params{
      torch::zeros({3}, torch::requires_grad()), torch::zeros({5, 2}, torch::requires_grad()),
      torch::zeros({1}, torch::requires_grad()), torch::zeros({40}, torch::requires_grad()),
      torch::zeros({2}, torch::requires_grad())};
  // Rank r's gradient of parameter i, element j: (r + 1) * (i + 1) + j.
  for (size_t i = 0; i < params.size(); ++i) {
    if (i == 2 && comm.rank() == 0) continue;  // missing gradient counts as zero
    params[i].mutable_grad() =
        torch::arange(params[i].numel(), torch::kFloat32).view(params[i].sizes()) +
        (comm.rank() + 1.0f) * (i + 1.0f);
  }
  GradientAllreducer reducer(comm, params, 64);
  EXPECT_GT(reducer.num_buckets(), 2);
  reducer.average_gradients();
  const int n = comm.size();
  for (size_t i = 0; i < params.size(); ++i) {
    torch::Tensor expected = torch::zeros({params[i].numel()});
    for (int r = 0; r < n; ++r) {
      if (i == 2 && r == 0) continue;
      expected += torch::arange(params[i].numel(), torch::kFloat32) + (r + 1.0f) * (i + 1.0f);
    }
    expected /= n;
    EXPECT_TRUE(torch::allclose(params[i].grad().reshape({-1}), expected)) << "parameter " << i;
  }
}

}  // namespace
}  // namespace ctmq::dist
