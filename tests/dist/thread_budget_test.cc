#include "ctmq/dist/thread_budget.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "ctmq/dist/single_process_communicator.h"

namespace ctmq::dist {
namespace {

TEST(ResolveThreads, ExplicitThenSlurmThenCores) {
  EXPECT_EQ(resolve_threads(3, 8), 3);
  setenv("SLURM_CPUS_PER_TASK", "5", 1);
  EXPECT_EQ(resolve_threads(0, 8), 5);
  unsetenv("SLURM_CPUS_PER_TASK");
  EXPECT_GE(resolve_threads(0, 1000), 1);
}

TEST(RanksPerNode, LauncherEnvironmentThenWorldSize) {
  SingleProcessCommunicator one;
  unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  unsetenv("SLURM_NTASKS_PER_NODE");
  EXPECT_EQ(ranks_per_node(one), 1);
  setenv("SLURM_NTASKS_PER_NODE", "4", 1);
  EXPECT_EQ(ranks_per_node(one), 4);
  setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
  EXPECT_EQ(ranks_per_node(one), 2);
  unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  unsetenv("SLURM_NTASKS_PER_NODE");
}

}  // namespace
}  // namespace ctmq::dist
