// The choice of collective engine (dist/collectives.h) and the NCCL
// communicator. Without NCCL in the build (every CPU build) the choice falls
// back to MPI and an explicit request for NCCL fails with directions. With
// NCCL and a GPU (bench/gpu/gpu_check.sh nccl) a world of one rank checks each
// collective on CUDA tensors against the MPI path's results.
#include "ctmq/dist/collectives.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ctmq/dist/mpi_context.h"
#include "ctmq/dist/nccl_communicator.h"
#include "ctmq/dist/single_process_communicator.h"
#include "test_support.h"

namespace ctmq::dist {
namespace {

// Pretends to have `ranks` ranks (only the size matters to the choice).
class Ranks : public SingleProcessCommunicator {
 public:
  explicit Ranks(int ranks) : ranks_(ranks) {}
  int size() const override { return ranks_; }

 private:
  int ranks_;
};

using ctmq::testing::error_of;

TEST(Collectives, CpuRanksAndOneRankAlwaysUseMpi) {
  Ranks two(2), one(1);
  EXPECT_EQ(device_communicator(two, Collectives::kAuto, DeviceKind::kCpu), nullptr);
  EXPECT_EQ(device_communicator(two, Collectives::kMpi, DeviceKind::kCuda), nullptr);
  EXPECT_EQ(device_communicator(one, Collectives::kAuto, DeviceKind::kCuda), nullptr);
  const std::string cpu =
      error_of([&] { device_communicator(two, Collectives::kNccl, DeviceKind::kCpu); });
  EXPECT_NE(cpu.find("device = cuda"), std::string::npos) << cpu;
}

TEST(Collectives, WithoutNcclAutoFallsBackAndNcclSaysHowToGetIt) {
  if (nccl_available()) GTEST_SKIP() << "this build has NCCL";
  Ranks two(2);
  EXPECT_EQ(device_communicator(two, Collectives::kAuto, DeviceKind::kCuda), nullptr);
  const std::string e = error_of([&] { make_nccl_communicator(two, 0); });
  EXPECT_NE(e.find("without NCCL"), std::string::npos) << e;
  EXPECT_NE(e.find("CTMQ_NCCL_ROOT"), std::string::npos) << e;
  EXPECT_NE(e.find("collectives = mpi"), std::string::npos) << e;
}

// A world of one rank: NCCL's sums and broadcasts are the identity, as MPI's
// are; the checks are that each call runs, keeps dtype and values, and that
// the asynchronous reduction is ordered before later work on the stream.
TEST(NcclCommunicator, WorldOfOneOnTheGpuMatchesMpi) {
  if (!nccl_available() || !torch::cuda::is_available()) {
    GTEST_SKIP() << "needs a build with NCCL and a GPU (bench/gpu/gpu_check.sh nccl)";
  }
  MpiContext mpi;
  ASSERT_EQ(mpi.size(), 1);
  const auto nccl = device_communicator(mpi, Collectives::kNccl, DeviceKind::kCuda);
  ASSERT_NE(nccl, nullptr);
  EXPECT_TRUE(nccl->starts_from_any_thread());
  const torch::Device gpu(torch::kCUDA, 0);
  for (auto dtype : {torch::kFloat32, torch::kFloat64, torch::kInt64, torch::kInt32}) {
    const torch::Tensor host = torch::arange(1000).to(dtype);
    std::vector<torch::Tensor> on_gpu{host.to(gpu)}, on_host{host.clone()};
    nccl->allreduce_sum(on_gpu);
    mpi.allreduce_sum(on_host);
    EXPECT_TRUE(torch::equal(on_gpu[0].cpu(), on_host[0])) << dtype;
    nccl->broadcast(on_gpu, 0);
    EXPECT_TRUE(torch::equal(on_gpu[0].cpu(), host)) << dtype;
  }
  torch::Tensor x = torch::randn({1 << 20}, torch::TensorOptions(gpu));
  const torch::Tensor expected = x.cpu() * 2;
  auto pending = nccl->start_allreduce_sum(x);
  pending->wait();
  x.mul_(2);  // on the current stream, after the reduction
  EXPECT_TRUE(torch::equal(x.cpu(), expected));
  EXPECT_TRUE(pending->test());
}

}  // namespace
}  // namespace ctmq::dist
