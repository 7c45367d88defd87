#include "ctmq/dist/thread_budget.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "ctmq/dist/single_process_communicator.h"

namespace ctmq::dist {
namespace {

// Restores the affinity mask a test narrowed.
class AffinityGuard {
 public:
  AffinityGuard() { sched_getaffinity(0, sizeof saved_, &saved_); }
  ~AffinityGuard() { sched_setaffinity(0, sizeof saved_, &saved_); }

 private:
  cpu_set_t saved_;
};

TEST(ResolveThreads, ExplicitThenSlurmThenUsableCpus) {
  unsetenv("SLURM_CPUS_PER_TASK");
  EXPECT_EQ(resolve_threads(3, 8).threads, 3);
  const int usable = resolve_threads(0, 1).threads;
  EXPECT_GE(usable, 1);
  EXPECT_LE(usable, affinity_cpus());
  setenv("SLURM_CPUS_PER_TASK", "1", 1);
  EXPECT_EQ(resolve_threads(0, 8).threads, 1);
  // A per-task count above the CPUs this process may use is capped.
  setenv("SLURM_CPUS_PER_TASK", "4096", 1);
  EXPECT_EQ(resolve_threads(0, 8).threads, usable);
  EXPECT_NE(resolve_threads(0, 8).reason.find("SLURM_CPUS_PER_TASK 4096"), std::string::npos);
  unsetenv("SLURM_CPUS_PER_TASK");
  EXPECT_EQ(resolve_threads(0, 1000).threads, 1);
}

TEST(DefaultLoaderWorkers, OneWorkerUnlessTheRankHasFourCpus) {
  EXPECT_EQ(default_loader_workers(1), 1);
  EXPECT_EQ(default_loader_workers(3), 1);
  EXPECT_EQ(default_loader_workers(4), 2);
  EXPECT_EQ(default_loader_workers(64), 2);
}

// Regression: the default used the machine's cores, so a process restricted
// by taskset (or a launcher's binding) ran one thread per core of the machine.
TEST(ResolveThreads, ANarrowedAffinityMaskIsNeverOversubscribed) {
  unsetenv("SLURM_CPUS_PER_TASK");
  AffinityGuard guard;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  EXPECT_EQ(affinity_cpus(), 1);
  const ThreadBudget budget = resolve_threads(0, 1);
  EXPECT_EQ(budget.threads, 1);
  EXPECT_NE(budget.reason.find("1 CPU(s) in the affinity mask"), std::string::npos)
      << budget.reason;
}

class CgroupTree : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("ctmq-cgroup-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void write(const std::string& relative, const std::string& text) {
    const auto path = root_ / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  std::filesystem::path root_;
};

TEST_F(CgroupTree, V2QuotaOfTheGroupOrAnAncestorRoundedUp) {
  write("job/step/cpu.max", "max 100000\n");
  write("job/cpu.max", "150000 100000\n");  // 1.5 CPUs -> 2
  EXPECT_EQ(cgroup_cpu_limit("0::/job/step\n", root_.string()), 2);
  write("job/step/cpu.max", "100000 100000\n");
  EXPECT_EQ(cgroup_cpu_limit("0::/job/step\n", root_.string()), 1);
}

TEST_F(CgroupTree, V1CfsQuota) {
  write("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "300000\n");
  write("cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(cgroup_cpu_limit("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n", root_.string()),
            3);
  write("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
  EXPECT_EQ(cgroup_cpu_limit("4:cpu,cpuacct:/docker/abc\n", root_.string()), std::nullopt);
}

TEST_F(CgroupTree, NoQuotaAnywhereIsNoLimit) {
  write("cpu.max", "max 100000\n");
  EXPECT_EQ(cgroup_cpu_limit("0::/\n", root_.string()), std::nullopt);
  EXPECT_EQ(cgroup_cpu_limit("", root_.string()), std::nullopt);
}

}  // namespace
}  // namespace ctmq::dist
