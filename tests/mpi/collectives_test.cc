// One conformance suite for every communicator, on 2 ranks: the collectives,
// text between ranks, replica broadcast, and gradient averaging (after
// backward and overlapped with it) checked against direct oracles. Each test
// runs over every communicator this machine can build:
//   mpi        MpiContext with CPU tensors (always; what CI runs);
//   threaded   MpiContext behind a test double that starts every reduction
//              from a thread of its own, as autograd's device thread starts
//              them on GPU ranks (MPI_THREAD_SERIALIZED: one call at a time);
//   nccl       NcclCommunicator on CUDA tensors (a build with NCCL and a GPU;
//              both ranks share GPU 0, each with its own NCCL_HOSTID, and
//              CTMQ_ALLOW_SHARED_GPU=1). Skipped, saying so, elsewhere.
#include "ctmq/dist/collectives.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "ctmq/dist/gradient_allreducer.h"
#include "ctmq/dist/module_sync.h"
#include "ctmq/dist/nccl_communicator.h"
#include "ctmq/dist/shared_directory.h"
#include "ctmq/dist/text_collectives.h"
#include "mpi/mpi_test_main.h"
#include "test_support.h"

namespace ctmq::dist {
namespace {

using ctmq::testing::mpi_context;

// Runs each start_allreduce_sum of `inner` on a worker thread of its own and
// returns when it has started; everything else on the caller's thread.
class ThreadedStarts : public Communicator {
 public:
  explicit ThreadedStarts(Communicator& inner) : inner_(inner), worker_([this] { serve(); }) {}
  ~ThreadedStarts() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    ready_.notify_all();
    worker_.join();
  }
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  int local_rank() const override { return inner_.local_rank(); }
  int local_size() const override { return inner_.local_size(); }
  void allreduce_sum(std::vector<torch::Tensor>& t) override { inner_.allreduce_sum(t); }
  std::unique_ptr<PendingReduction> start_allreduce_sum(torch::Tensor tensor) override {
    std::unique_ptr<PendingReduction> pending;
    std::unique_lock<std::mutex> lock(mutex_);
    task_ = [&] { pending = inner_.start_allreduce_sum(tensor); };
    ready_.notify_all();
    ready_.wait(lock, [this] { return !task_; });
    ++started_elsewhere;
    return pending;
  }
  bool starts_from_any_thread() const override { return true; }
  void broadcast(std::vector<torch::Tensor>& t, int root) override { inner_.broadcast(t, root); }
  bool any(bool flag) override { return inner_.any(flag); }
  void barrier() override { inner_.barrier(); }
  [[noreturn]] void abort(const std::string& m, int code) override {
    inner_.abort(m, code);
    std::abort();  // not reached: inner_.abort never returns
  }
  int started_elsewhere = 0;

 private:
  void serve() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      ready_.wait(lock, [this] { return stop_ || task_; });
      if (stop_) return;
      task_();
      task_ = nullptr;
      ready_.notify_all();
    }
  }
  Communicator& inner_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::function<void()> task_;
  bool stop_ = false;
  std::thread worker_;
};

// A communicator under test and the device its tensors live on.
struct Subject {
  Communicator* comm = nullptr;
  torch::Device device = torch::kCPU;
  std::string skip;  // why this machine cannot run it; empty when it can
};

Subject subject(const std::string& name) {
  auto& mpi = mpi_context();
  if (name == "mpi") return {&mpi, torch::kCPU, ""};
  if (name == "threaded") {
    static ThreadedStarts threaded(mpi);
    return {&threaded, torch::kCPU, ""};
  }
  // nccl: once per process (its set-up is collective).
  if (!nccl_available()) return {nullptr, torch::kCPU, "this build has no NCCL"};
  if (!torch::cuda::is_available()) return {nullptr, torch::kCPU, "no GPU on this machine"};
  static std::unique_ptr<Communicator> nccl = [&mpi] {
    // Two ranks on one GPU: NCCL needs a host id per rank, ctmq the consent.
    setenv("NCCL_HOSTID", ("ctmq-conformance-" + std::to_string(mpi.rank())).c_str(), 1);
    setenv("CTMQ_ALLOW_SHARED_GPU", "1", 1);
    return device_communicator(mpi, Collectives::kNccl, DeviceKind::kCuda, 120);
  }();
  return {nccl.get(), torch::Device(torch::kCUDA, 0), ""};
}

class Conformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    s_ = subject(GetParam());
    if (!s_.skip.empty()) GTEST_SKIP() << s_.skip;
    ASSERT_EQ(s_.comm->size(), 2) << "run under mpirun -n 2";
  }
  Communicator& comm() { return *s_.comm; }
  torch::TensorOptions on() const { return torch::TensorOptions().device(s_.device); }
  Subject s_;
};

TEST_P(Conformance, RanksAndNodes) {
  EXPECT_EQ(comm().rank(), mpi_context().rank());
  EXPECT_GE(comm().local_rank(), 0);
  EXPECT_LT(comm().local_rank(), comm().local_size());
}

TEST_P(Conformance, AllreduceSumOfEveryDtype) {
  const int r = comm().rank(), n = comm().size();
  std::vector<torch::Tensor> tensors{
      torch::arange(5, on().dtype(torch::kFloat32)) * (r + 1),
      torch::full({2, 3}, r + 0.5, on().dtype(torch::kFloat64)),
      torch::full({4}, int64_t{1} << (40 + r), on().dtype(torch::kInt64)),
      torch::full({3}, r + 2, on().dtype(torch::kInt32))};
  comm().allreduce_sum(tensors);
  const double rank_sum = n * (n + 1) / 2.0;  // sum of (r + 1)
  EXPECT_TRUE(torch::equal(tensors[0].cpu(), torch::arange(5, torch::kFloat32) * rank_sum));
  EXPECT_DOUBLE_EQ(tensors[1][1][2].item<double>(), n * (n - 1) / 2.0 + 0.5 * n);
  int64_t expected = 0;
  for (int i = 0; i < n; ++i) expected += int64_t{1} << (40 + i);
  EXPECT_EQ(tensors[2][3].item<int64_t>(), expected);
  EXPECT_EQ(tensors[3][0].item<int32_t>(), n * (n - 1) / 2 + 2 * n);
}

TEST_P(Conformance, BroadcastCopiesRootTensorsOfAnyDtype) {
  for (int root = 0; root < comm().size(); ++root) {
    std::vector<torch::Tensor> tensors{torch::full({3, 2}, comm().rank() * 10.f + 1, on()),
                                       torch::full({2}, int64_t{comm().rank() + 7}, on())};
    comm().broadcast(tensors, root);
    EXPECT_TRUE(torch::equal(tensors[0].cpu(), torch::full({3, 2}, root * 10.f + 1)));
    EXPECT_TRUE(torch::equal(tensors[1].cpu(), torch::full({2}, int64_t{root + 7})));
  }
}

TEST_P(Conformance, AnyIsTrueEverywhereWhenOneRankSaysSo) {
  EXPECT_FALSE(comm().any(false));
  EXPECT_TRUE(comm().any(true));
  EXPECT_TRUE(comm().any(comm().rank() == comm().size() - 1));
  comm().barrier();
}

TEST_P(Conformance, StartedReductionsFinishInOrderAndBeforeTheirWait) {
  // Several reductions in flight at once, waited for in reverse order; one
  // never waited for is finished by its destructor.
  std::vector<torch::Tensor> x;
  std::vector<std::unique_ptr<PendingReduction>> pending;
  for (int i = 0; i < 4; ++i) {
    x.push_back(torch::full({1000 * (i + 1)}, comm().rank() + i + 1.0f, on()));
    pending.push_back(comm().start_allreduce_sum(x.back()));
  }
  for (int i = 3; i >= 1; --i) pending[i]->wait();
  pending[0].reset();  // destroyed without wait()
  for (int i = 0; i < 4; ++i) {
    const float expected = (0 + i + 1.0f) + (1 + i + 1.0f);
    EXPECT_TRUE(torch::equal(x[i].cpu(), torch::full({1000 * (i + 1)}, expected))) << i;
  }
}

TEST_P(Conformance, SumValuesOverRanks) {
  auto sums = allreduce_sum_values(comm(), {1.0, static_cast<double>(comm().rank())});
  EXPECT_DOUBLE_EQ(sums[0], comm().size());
  EXPECT_DOUBLE_EQ(sums[1], comm().size() * (comm().size() - 1) / 2.0);
}

TEST_P(Conformance, TextAndBytesTravelBetweenRanks) {
  const std::string own =
      "rank " + std::to_string(comm().rank()) + std::string(comm().rank() * 3, 'x');
  const auto all = all_gather_text(comm(), own);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], "rank 0");
  EXPECT_EQ(all[1], "rank 1xxx");
  std::string bytes = comm().rank() == 1 ? std::string("\0\xff tab\t", 7) : "ignored";
  broadcast_bytes(comm(), bytes, 1);
  EXPECT_EQ(bytes, std::string("\0\xff tab\t", 7));
  // A failure on rank 0 alone reaches every rank.
  const std::string e = ctmq::testing::error_of(
      [&] { run_on_root(comm(), [] { throw Error("file run/x.pt is damaged"); }); });
  EXPECT_EQ(e, "file run/x.pt is damaged");
}

TEST_P(Conformance, BroadcastModuleStateMakesReplicasEqual) {
  torch::manual_seed(100 + comm().rank());  // different init on each rank
  torch::nn::Sequential net(torch::nn::Conv2d(3, 4, 3), torch::nn::BatchNorm2d(4));
  net->to(s_.device);
  net->ptr(1)->as<torch::nn::BatchNorm2d>()->running_mean.fill_(comm().rank() + 1.0);
  broadcast_module_state(comm(), *net);
  // Every rank now holds rank 0's state: compare with a sum over ranks.
  for (auto& t : net->parameters()) {
    std::vector<torch::Tensor> sum{t.detach().clone()};
    comm().allreduce_sum(sum);
    EXPECT_TRUE(torch::equal(sum[0], t.detach() * comm().size()));
  }
  EXPECT_TRUE(torch::equal(net->ptr(1)->as<torch::nn::BatchNorm2d>()->running_mean.cpu(),
                           torch::ones({4})));
  check_replicas_agree(comm(), *net, "the test");
}

TEST_P(Conformance, GradientAllreducerAveragesAcrossSmallBuckets) {
  // Parameters of mixed sizes; a 64-byte bucket limit forces several buckets.
  std::vector<torch::Tensor> params;
  for (int64_t n : {3, 10, 1, 40, 2}) params.push_back(torch::zeros({n}, on().requires_grad(true)));
  // Rank r's gradient of parameter i, element j: (r + 1) * (i + 1) + j.
  for (size_t i = 0; i < params.size(); ++i) {
    if (i == 2 && comm().rank() == 0) continue;  // missing on one rank: counts as zero
    params[i].mutable_grad() = torch::arange(params[i].numel(), on().dtype(torch::kFloat32)) +
                               (comm().rank() + 1.0f) * (i + 1.0f);
  }
  GradientAllreducer reducer(comm(), params, 64);
  EXPECT_GT(reducer.num_buckets(), 2);
  reducer.average_gradients();
  EXPECT_EQ(reducer.num_dropped(), 0);  // parameter 2 had a gradient on rank 1
  const int n = comm().size();
  for (size_t i = 0; i < params.size(); ++i) {
    torch::Tensor expected = torch::zeros({params[i].numel()});
    for (int r = 0; r < n; ++r) {
      if (i == 2 && r == 0) continue;
      expected += torch::arange(params[i].numel(), torch::kFloat32) + (r + 1.0f) * (i + 1.0f);
    }
    expected /= n;
    EXPECT_TRUE(torch::allclose(params[i].grad().cpu(), expected)) << "parameter " << i;
  }
}

// A parameter that one rank uses and the other does not: its bucket starts
// from a hook on one rank and after backward on the other, and the first
// step's census of used parameters must not come between them.
TEST_P(Conformance, OverlappedWithAParameterOnlyOneRankUses) {
  std::vector<torch::Tensor> params{torch::ones({8}, on().requires_grad(true)),
                                    torch::ones({8}, on().requires_grad(true))};
  GradientAllreducer reducer(comm(), params, 32, /*overlap=*/true);  // a bucket each
  ASSERT_EQ(reducer.num_buckets(), 2);
  for (int step = 0; step < 2; ++step) {
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    torch::Tensor loss = (params[0] * 2).sum();
    if (comm().rank() == 1) loss = loss + (params[1] * 3).sum();
    loss.backward();
    reducer.average_gradients();
    EXPECT_TRUE(torch::equal(params[0].grad().cpu(), torch::full({8}, 2.0f))) << step;
    ASSERT_TRUE(params[1].grad().defined()) << step;
    EXPECT_TRUE(torch::equal(params[1].grad().cpu(), torch::full({8}, 1.5f))) << step;
  }
  EXPECT_EQ(reducer.num_dropped(), 0);
}

// Overlapped with backward (hooks start the buckets) and after backward:
// the same buckets, the same sums, bit for bit, over three steps.
TEST_P(Conformance, OverlappedAllreduceEqualsAfterBackward) {
  torch::manual_seed(7);
  torch::nn::Sequential a(torch::nn::Linear(16, 32), torch::nn::ReLU(), torch::nn::Linear(32, 32),
                          torch::nn::ReLU(), torch::nn::Linear(32, 4));
  auto b = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(a->clone());
  a->to(s_.device);
  b->to(s_.device);
  GradientAllreducer after(comm(), a->parameters(), 256, /*overlap=*/false);
  GradientAllreducer overlapped(comm(), b->parameters(), 256, /*overlap=*/true);
  ASSERT_TRUE(overlapped.overlapping());
  ASSERT_GT(overlapped.num_buckets(), 2);
  for (int step = 0; step < 3; ++step) {
    torch::manual_seed(step * 10 + comm().rank());  // each rank its own batch
    const torch::Tensor input = torch::randn({8, 16}).to(s_.device);
    for (auto& p : a->parameters()) p.mutable_grad() = torch::Tensor();
    for (auto& p : b->parameters()) p.mutable_grad() = torch::Tensor();
    a->forward(input).square().sum().backward();
    after.average_gradients();
    b->forward(input).square().sum().backward();
    overlapped.average_gradients();
    const auto pa = a->parameters(), pb = b->parameters();
    for (size_t i = 0; i < pa.size(); ++i)
      EXPECT_TRUE(torch::equal(pa[i].grad(), pb[i].grad())) << "step " << step << ", " << i;
  }
  if (auto* threaded = dynamic_cast<ThreadedStarts*>(s_.comm))
    EXPECT_GT(threaded->started_elsewhere, 0) << "no reduction started from the worker thread";
}

INSTANTIATE_TEST_SUITE_P(Communicators, Conformance, ::testing::Values("mpi", "threaded", "nccl"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// A directory that is not the same on every rank (rank 1 looks in another
// one, as a rank on another node sees its own /tmp) is refused on every
// rank, naming rank 1; a shared one passes and is left as it was, and one
// that does not exist yet is not created.
TEST(SharedDirectory, RefusesADirectoryRankOneDoesNotShare) {
  auto& comm = mpi_context();
  const std::string base = ctmq::testing::shared_dir(comm, "shared");
  // A run directory not made yet: its nearest existing ancestor is checked,
  // and nothing is created.
  check_shared_directory(comm, base + "/run", "--run-dir");
  comm.barrier();
  EXPECT_FALSE(std::filesystem::exists(base));
  if (comm.rank() == 0) std::filesystem::create_directories(base + "/run");
  comm.barrier();
  check_shared_directory(comm, base + "/run", "--run-dir");
  comm.barrier();
  EXPECT_TRUE(std::filesystem::is_empty(base + "/run"));
  const std::string own = base + "/node-local-" + std::to_string(comm.rank());
  std::filesystem::create_directories(own);
  const std::string e =
      ctmq::testing::error_of([&] { check_shared_directory(comm, own, "--run-dir"); });
  EXPECT_NE(e.find("is not shared by every rank: rank 1 on "), std::string::npos) << e;
  EXPECT_NE(e.find("not node-local scratch"), std::string::npos) << e;
  comm.barrier();
  if (comm.rank() == 0) std::filesystem::remove_all(base);
}

}  // namespace
}  // namespace ctmq::dist
