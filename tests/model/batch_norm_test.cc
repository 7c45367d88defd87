// BatchNorm2d: identical to torch::nn::BatchNorm2d without a reducer; with a
// reducer, two simulated ranks (two threads summing through a shared slot)
// reproduce one-process BatchNorm over the concatenated batch.
#include "ctmq/model/batch_norm.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "ctmq/model/network.h"

namespace ctmq::model {
namespace {

std::vector<std::string> state_names(const torch::nn::Module& m) {
  std::vector<std::string> names;
  for (const auto& p : m.named_parameters()) names.push_back(p.key());
  for (const auto& b : m.named_buffers()) names.push_back(b.key());
  return names;
}

TEST(BatchNorm2d, WithoutReducerEqualsTorchExactly) {
  BatchNorm2d ours(5);
  torch::nn::BatchNorm2d ref(5);
  EXPECT_EQ(state_names(*ours), state_names(*ref));
  torch::manual_seed(1);
  {
    torch::NoGradGuard no_grad;
    ours->weight.uniform_(0.5, 1.5);
    ours->bias.uniform_(-0.5, 0.5);
    ref->weight.copy_(ours->weight);
    ref->bias.copy_(ours->bias);
  }
  for (int step = 0; step < 3; ++step) {
    const torch::Tensor x0 = torch::randn({4, 5, 3, 3}) * 2 + 1;
    const torch::Tensor upstream = torch::randn({4, 5, 3, 3});
    const torch::Tensor x1 = x0.clone().requires_grad_(true);
    const torch::Tensor x2 = x0.clone().requires_grad_(true);
    const torch::Tensor y1 = ours->forward(x1);
    const torch::Tensor y2 = ref->forward(x2);
    EXPECT_TRUE(torch::equal(y1, y2));
    (y1 * upstream).sum().backward();
    (y2 * upstream).sum().backward();
    EXPECT_TRUE(torch::equal(x1.grad(), x2.grad()));
    EXPECT_TRUE(torch::equal(ours->weight.grad(), ref->weight.grad()));
    EXPECT_TRUE(torch::equal(ours->bias.grad(), ref->bias.grad()));
  }
  EXPECT_TRUE(torch::equal(ours->running_mean, ref->running_mean));
  EXPECT_TRUE(torch::equal(ours->running_var, ref->running_var));
  EXPECT_EQ(ours->num_batches_tracked.item<int64_t>(), 3);
  EXPECT_TRUE(torch::equal(ours->num_batches_tracked, ref->num_batches_tracked));
  ours->eval();
  ref->eval();
  const torch::Tensor x = torch::randn({2, 5, 4, 4});
  EXPECT_TRUE(torch::equal(ours->forward(x), ref->forward(x)));
}

// Sums vectors deposited by two threads; both get the sum. Calls must pair up
// in the same order on both threads, as collectives do.
class TwoRankSum {
 public:
  void operator()(int rank, std::vector<torch::Tensor>& tensors) {
    std::unique_lock<std::mutex> lock(mutex_);
    const int64_t round = round_;
    slot_[rank] = tensors;
    if (++arrived_ == 2) {
      for (size_t i = 0; i < tensors.size(); ++i) sum_.push_back(slot_[0][i] + slot_[1][i]);
      result_ = sum_;
      sum_.clear();
      arrived_ = 0;
      ++round_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return round_ != round; });
    }
    for (size_t i = 0; i < tensors.size(); ++i) tensors[i].copy_(result_[i]);
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<torch::Tensor> slot_[2];
  std::vector<torch::Tensor> sum_, result_;
  int arrived_ = 0;
  int64_t round_ = 0;
};

TEST(BatchNorm2d, ReducerMakesTwoRanksEqualOneProcessOverTheWholeBatch) {
  torch::manual_seed(2);
  const int64_t c = 3;
  const torch::Tensor x = torch::randn({8, c, 4, 4}) * 3 - 1;
  const torch::Tensor upstream = torch::randn({8, c, 4, 4});
  const torch::Tensor weight = torch::rand({c}) + 0.5;
  const torch::Tensor bias = torch::randn({c});

  // One process, whole batch; each rank's loss is the mean over its half, so
  // the reference loss is the sum of the two halves' means.
  torch::nn::BatchNorm2d ref(c);
  {
    torch::NoGradGuard no_grad;
    ref->weight.copy_(weight);
    ref->bias.copy_(bias);
  }
  const torch::Tensor xr = x.clone().requires_grad_(true);
  const torch::Tensor yr = ref->forward(xr);
  const torch::Tensor zr = yr * upstream;
  (zr.slice(0, 0, 4).mean() + zr.slice(0, 4, 8).mean()).backward();

  TwoRankSum sum;
  struct RankResult {
    torch::Tensor y, grad_x, grad_w, grad_b, running_mean, running_var;
  } results[2];
  auto run_rank = [&](int rank) {
    torch::set_num_threads(1);
    BatchNorm2d bn(c);
    {
      torch::NoGradGuard no_grad;
      bn->weight.copy_(weight);
      bn->bias.copy_(bias);
    }
    bn->set_stats_reducer([&sum, rank](std::vector<torch::Tensor>& t) { sum(rank, t); });
    const torch::Tensor xs = x.slice(0, 4 * rank, 4 * rank + 4).clone().requires_grad_(true);
    const torch::Tensor y = bn->forward(xs);
    (y * upstream.slice(0, 4 * rank, 4 * rank + 4)).mean().backward();
    results[rank] = {y.detach(),
                     xs.grad(),
                     bn->weight.grad(),
                     bn->bias.grad(),
                     bn->running_mean.clone(),
                     bn->running_var.clone()};
  };
  std::thread other(run_rank, 1);
  run_rank(0);
  other.join();

  const double tol = 1e-5;
  const torch::Tensor y = torch::cat({results[0].y, results[1].y});
  EXPECT_LT((y - yr).abs().max().item<double>(), tol);
  const torch::Tensor gx = torch::cat({results[0].grad_x, results[1].grad_x});
  EXPECT_LT((gx - xr.grad()).abs().max().item<double>(), tol);
  // Parameter gradients stay local; their sum over ranks is the reference's.
  EXPECT_LT((results[0].grad_w + results[1].grad_w - ref->weight.grad()).abs().max().item<double>(),
            tol);
  EXPECT_LT((results[0].grad_b + results[1].grad_b - ref->bias.grad()).abs().max().item<double>(),
            tol);
  for (const auto& r : results) {
    EXPECT_LT((r.running_mean - ref->running_mean).abs().max().item<double>(), tol);
    EXPECT_LT((r.running_var - ref->running_var).abs().max().item<double>(), tol);
  }
  // The halves alone would give different statistics: the test can fail.
  torch::nn::BatchNorm2d half(c);
  half->forward(x.slice(0, 0, 4));
  EXPECT_GT((half->running_mean - ref->running_mean).abs().max().item<double>(), 1e-3);
}

TEST(BatchNorm2d, SingleRankReducerEqualsPlainBatchNorm) {
  torch::manual_seed(3);
  BatchNorm2d a(4), b(4);
  int calls = 0;
  b->set_stats_reducer([&calls](std::vector<torch::Tensor>&) { ++calls; });
  const torch::Tensor x0 = torch::randn({6, 4, 5, 5}) + 2;
  const torch::Tensor xa = x0.clone().requires_grad_(true);
  const torch::Tensor xb = x0.clone().requires_grad_(true);
  const torch::Tensor ya = a->forward(xa), yb = b->forward(xb);
  EXPECT_LT((ya - yb).abs().max().item<double>(), 1e-5);
  (ya * x0).sum().backward();
  (yb * x0).sum().backward();
  EXPECT_EQ(calls, 2);  // one forward and one backward reduction
  EXPECT_LT((xa.grad() - xb.grad()).abs().max().item<double>(), 1e-4);
  EXPECT_LT((a->running_var - b->running_var).abs().max().item<double>(), 1e-5);
}

TEST(BatchNorm2d, SetStatsReducerReachesEveryBatchNormOfANetwork) {
  auto net = make_network(ModelOptions{});
  int bns = 0;
  set_stats_reducer(*net, [](std::vector<torch::Tensor>&) {});
  for (const auto& m : net->modules()) {
    if (auto* bn = dynamic_cast<BatchNorm2dImpl*>(m.get())) {
      ++bns;
      EXPECT_TRUE(bn->has_stats_reducer());
    }
  }
  EXPECT_EQ(bns, 10);  // stem, 3 blocks x 2, 3 shortcuts
  set_stats_reducer(*net, nullptr);
  for (const auto& m : net->modules()) {
    if (auto* bn = dynamic_cast<BatchNorm2dImpl*>(m.get())) EXPECT_FALSE(bn->has_stats_reducer());
  }
}

}  // namespace
}  // namespace ctmq::model
