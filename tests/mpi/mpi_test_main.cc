// GoogleTest main for the MPI tests (run under `mpirun -n 2`).
//
// Initialises MPI once through MpiContext and exposes it to the tests through
// ctmq::testing::mpi_context(). Only rank 0 prints gtest's report; a failure
// on any other rank is printed tagged with its rank, and the exit code is
// non-zero on every rank if any rank failed, so mpirun reports the failure.
#include "mpi/mpi_test_main.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "ctmq/dist/mpi_context.h"

namespace ctmq::testing {
namespace {
dist::MpiContext* g_context = nullptr;

// Prints failures of ranks other than 0, tagged with the rank.
class RankTaggedFailures : public ::testing::EmptyTestEventListener {
 public:
  explicit RankTaggedFailures(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::cerr << "[rank " << rank_ << "] " << (result.file_name() ? result.file_name() : "?") << ":"
              << result.line_number() << ": " << result.summary() << std::endl;
  }

 private:
  int rank_;
};
}  // namespace

dist::MpiContext& mpi_context() { return *g_context; }

std::string shared_dir(dist::Communicator& comm, const std::string& name) {
  std::vector<torch::Tensor> pid{torch::full({1}, static_cast<int64_t>(::getpid()), torch::kInt64)};
  comm.broadcast(pid, 0);
  return (std::filesystem::temp_directory_path() /
          ("ctmq-mpi-" + name + "-" + std::to_string(pid[0].item<int64_t>())))
      .string();
}

}  // namespace ctmq::testing

int main(int argc, char** argv) {
  ctmq::dist::MpiContext context(&argc, &argv);
  ctmq::testing::g_context = &context;
  ::testing::InitGoogleTest(&argc, argv);
  if (context.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new ctmq::testing::RankTaggedFailures(context.rank()));
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  bool any_failed = context.any(failed != 0);
  ctmq::testing::g_context = nullptr;
  return any_failed ? 1 : 0;
}
