#include "ctmq/train/stage_lock.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "test_support.h"

namespace ctmq::train {
namespace {

using ctmq::testing::error_of;

TEST(StageLock, ASecondTrainerIsRefusedWithTheHolderNamed) {
  testing::TempDir dir;
  const std::string stage = dir.path() + "/stages/c0-fp";
  {
    StageLock first(stage);
    EXPECT_TRUE(std::filesystem::exists(stage + "/LOCK"));
    const std::string error = error_of([&] { StageLock second(stage); });
    EXPECT_NE(error.find("is being trained by host"), std::string::npos) << error;
    EXPECT_NE(error.find("pid " + std::to_string(::getpid())), std::string::npos) << error;
    EXPECT_NE(error.find(stage + "/LOCK"), std::string::npos) << error;
  }
  EXPECT_FALSE(std::filesystem::exists(stage + "/LOCK")) << "the lock outlived its holder";
  StageLock again(stage);  // released: free to take
}

// A trainer killed with SIGKILL leaves its lock behind; the rerun takes it over.
TEST(StageLock, TheLockOfADeadProcessOnThisHostIsTakenOver) {
  testing::TempDir dir;
  const std::string stage = dir.path() + "/c0-fp";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    StageLock held(stage);
    ::_exit(0);  // no destructor: the file stays, as after kill -9
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(std::filesystem::exists(stage + "/LOCK"));
  StageLock taken(stage);
  const auto holder = nlohmann::json::parse(read_file(stage + "/LOCK"));
  EXPECT_EQ(holder["pid"].get<long>(), static_cast<long>(::getpid()));
}

TEST(StageLock, AHolderOnAnotherHostIsRefusedAReusedPidOrARequeuedJobIsNot) {
  testing::TempDir dir;
  const std::string stage = dir.path() + "/c0-fp";
  std::filesystem::create_directories(stage);
  // Another host: nothing here can tell that it is gone, so it is refused.
  write_file_atomically(stage + "/LOCK", R"({"host":"other-node","pid":1,"start_time":"1",)"
                                         R"("slurm_job_id":"991","since":"2026-11-29T10:00:00Z"})");
  const std::string error = error_of([&] { StageLock lock(stage); });
  EXPECT_NE(error.find("host other-node pid 1 (Slurm job 991)"), std::string::npos) << error;
  // This host, a live pid with another start time: the pid was reused.
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  nlohmann::json reused = {{"host", host},
                           {"pid", static_cast<long>(::getpid())},
                           {"start_time", "0"},
                           {"slurm_job_id", ""},
                           {"since", "?"}};
  write_file_atomically(stage + "/LOCK", reused.dump());
  StageLock taken(stage);
  // The Slurm job that now runs named in the lock: a requeued job restarting.
  nlohmann::json requeued = {{"host", "other-node"},
                             {"pid", 7},
                             {"start_time", "1"},
                             {"slurm_job_id", "4242"},
                             {"since", "?"}};
  testing::TempDir dir2;
  std::filesystem::create_directories(dir2.path() + "/s");
  write_file_atomically(dir2.path() + "/s/LOCK", requeued.dump());
  ::setenv("SLURM_JOB_ID", "4242", 1);
  EXPECT_NO_THROW(StageLock restarted(dir2.path() + "/s"));
  ::unsetenv("SLURM_JOB_ID");
}

}  // namespace
}  // namespace ctmq::train
