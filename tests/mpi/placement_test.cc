// Where a rank stands among the others, on 2 ranks of one host (issue 27):
// the MPI thread level that synchronised BatchNorm's backward needs, and the
// node-local rank taken from MPI itself, not from launcher variables (under
// mpirun inside a Slurm allocation SLURM_LOCALID is 0 on every rank).
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdlib>
#include <string>

#include "ctmq/dist/mpi_context.h"

namespace ctmq::dist {
namespace {

TEST(Placement, ThreadLevelIsAtLeastSerialized) {
  int provided = MPI_THREAD_SINGLE;
  ASSERT_EQ(MPI_Query_thread(&provided), MPI_SUCCESS);
  EXPECT_GE(provided, MPI_THREAD_SERIALIZED);
}

// Restores an environment variable when it goes out of scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (had_)
      setenv(name_, old_.c_str(), 1);
    else
      unsetenv(name_);
  }

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

TEST(Placement, LocalRankComesFromTheNodeNotFromLauncherVariables) {
  // Both ranks run on this host: node-local ranks 0 and 1 of 2, even when
  // every launcher variable says 0.
  const ScopedEnv ompi("OMPI_COMM_WORLD_LOCAL_RANK", "0");
  const ScopedEnv slurm("SLURM_LOCALID", "0");
  const ScopedEnv mpich("MPI_LOCALRANKID", "0");
  MpiContext context;  // MPI is initialised already: a second view of the world
  ASSERT_EQ(context.size(), 2);
  EXPECT_EQ(context.local_size(), 2);
  EXPECT_EQ(context.local_rank(), context.rank());
}

}  // namespace
}  // namespace ctmq::dist
