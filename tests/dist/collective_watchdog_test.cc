// The collective watchdog ends a rank whose collective outlasts the timeout
// (exit 69), whose communication library reports an error, or whose stuck
// collective outlasts the preemption grace after SIGUSR1 (exit 75), and
// leaves a rank whose collectives complete alone. Each end runs in a child
// process (a gtest death test).
#include "ctmq/dist/collective_watchdog.h"

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <thread>

#include "ctmq/common/preemption.h"

namespace ctmq::dist {
namespace {

using namespace std::chrono_literals;

class CollectiveWatchdogDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(CollectiveWatchdogDeathTest, EndsTheRankWhenABlockingCollectiveOutlastsTheTimeout) {
  EXPECT_EXIT(
      {
        CollectiveWatchdog watchdog(3, "MPI", 0.3);
        const auto guard = watchdog.blocking("MPI_Allreduce of 8 bytes");
        std::this_thread::sleep_for(10s);  // a peer that never answers
        std::exit(0);
      },
      ::testing::ExitedWithCode(69),
      "rank 3 on .*: MPI MPI_Allreduce of 8 bytes has not completed after 0\\.[3-9] s "
      "\\(\\[train\\] collective-timeout = 0\\.3 s\\): another rank died, hung or cannot be "
      "reached; ending this rank \\(exit 69\\)");
}

TEST_F(CollectiveWatchdogDeathTest, EndsTheRankWhenAsynchronousWorkNeverFinishes) {
  EXPECT_EXIT(
      {
        std::atomic<bool> aborted{false};
        CollectiveWatchdog watchdog(1, "NCCL", 0.3);
        watchdog.set_before_exit([&aborted] {
          aborted = true;
          std::cerr << "before-exit ran" << std::endl;
        });
        watchdog.watch("ncclAllReduce of 4096 bytes", [] { return false; });
        std::this_thread::sleep_for(10s);
        std::exit(0);
      },
      ::testing::ExitedWithCode(69),
      "NCCL ncclAllReduce of 4096 bytes has not completed(.|\n)*before-exit ran");
}

TEST_F(CollectiveWatchdogDeathTest, EndsTheRankOnAnAsynchronousError) {
  EXPECT_EXIT(
      {
        CollectiveWatchdog watchdog(2, "NCCL", 0);  // no timeout: errors still count
        watchdog.set_error_probe([] { return std::string("remote process exited (rank 5)"); });
        std::this_thread::sleep_for(10s);
        std::exit(0);
      },
      ::testing::ExitedWithCode(69),
      "rank 2 on .*: NCCL reported an error: remote process exited \\(rank 5\\)");
}

TEST_F(CollectiveWatchdogDeathTest, AfterAPreemptionSignalAStuckRankEndsAsPreempted) {
  EXPECT_EXIT(
      {
        install_preemption_handlers();
        // The timeout alone would wait 200 s; after SIGUSR1 the grace is 60 s,
        // too long for a test, so the timeout here is 1 s for both.
        CollectiveWatchdog watchdog(0, "MPI", 1.0);
        std::raise(SIGUSR1);
        const auto guard = watchdog.blocking("MPI_Barrier of 0 bytes");
        std::this_thread::sleep_for(10s);
        std::exit(0);
      },
      ::testing::ExitedWithCode(75), "a preemption signal \\(10\\) arrived");
}

TEST(CollectiveWatchdog, CollectivesThatCompleteEndNothing) {
  CollectiveWatchdog watchdog(0, "MPI", 0.2);
  for (int i = 0; i < 5; ++i) {
    const auto guard = watchdog.blocking("MPI_Allreduce of 8 bytes");
    std::this_thread::sleep_for(50ms);
  }
  std::atomic<bool> done{false};
  watchdog.watch("ncclAllReduce", [&done] { return done.load(); });
  std::this_thread::sleep_for(100ms);
  done = true;
  std::this_thread::sleep_for(400ms);  // twice the timeout after it was done: still alive
  SUCCEED();
}

}  // namespace
}  // namespace ctmq::dist
