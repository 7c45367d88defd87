// Synchronised BatchNorm on 2 ranks (model::set_stats_reducer with the
// MpiContext's allreduce) against one-process BatchNorm over the whole batch:
// forward output, input gradient, parameter gradients (after averaging) and
// running statistics.
#include <gtest/gtest.h>

#include "ctmq/dist/gradient_allreducer.h"
#include "ctmq/model/batch_norm.h"
#include "mpi/mpi_test_main.h"

namespace ctmq::model {
namespace {

TEST(SyncBatchNorm, TwoRanksMatchOneProcessOverTheWholeBatch) {
  auto& comm = ctmq::testing::mpi_context();
  const int n = comm.size();
  torch::manual_seed(42);  // same data and upstream gradient on every rank
  torch::Tensor x = torch::randn({8, 3, 5, 5}) * 2 + 0.5;
  torch::Tensor upstream = torch::randn({8, 3, 5, 5});

  // Oracle: torch's own BatchNorm2d on the whole batch.
  torch::nn::BatchNorm2d oracle(3);
  torch::Tensor x_all = x.clone().requires_grad_();
  torch::Tensor y_all = oracle->forward(x_all);
  (y_all * upstream).sum().backward();

  // This rank's slice of the batch through a synchronised BatchNorm2d.
  BatchNorm2d bn(3);
  set_stats_reducer(*bn, [&comm](std::vector<torch::Tensor>& t) { comm.allreduce_sum(t); });
  const int64_t per_rank = 8 / n;
  torch::Tensor x_mine = x.narrow(0, comm.rank() * per_rank, per_rank).clone().requires_grad_();
  torch::Tensor y_mine = bn->forward(x_mine);
  // Loss = sum over the whole batch; this rank holds its share.
  (y_mine * upstream.narrow(0, comm.rank() * per_rank, per_rank)).sum().backward();
  dist::GradientAllreducer reducer(comm, bn->parameters());
  reducer.average_gradients();  // mean over ranks: multiply by n to get the sum

  EXPECT_TRUE(
      torch::allclose(y_mine, y_all.narrow(0, comm.rank() * per_rank, per_rank), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(
      x_mine.grad(), x_all.grad().narrow(0, comm.rank() * per_rank, per_rank), 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(bn->weight.grad() * n, oracle->weight.grad(), 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(bn->bias.grad() * n, oracle->bias.grad(), 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(bn->running_mean, oracle->running_mean, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(bn->running_var, oracle->running_var, 1e-5, 1e-6));
}

}  // namespace
}  // namespace ctmq::model
