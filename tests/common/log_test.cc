#include "ctmq/common/log.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <regex>
#include <string>

namespace ctmq {
namespace {

// Sets TZ for the lifetime of the object and restores the previous value.
class ScopedTimeZone {
 public:
  explicit ScopedTimeZone(const char* zone) {
    if (const char* old = std::getenv("TZ")) saved_ = old, had_ = true;
    setenv("TZ", zone, 1);
    tzset();
  }
  ~ScopedTimeZone() {
    if (had_)
      setenv("TZ", saved_.c_str(), 1);
    else
      unsetenv("TZ");
    tzset();
  }

 private:
  std::string saved_;
  bool had_ = false;
};

// Issue 13: log lines had no time, so a job's log could not be lined up with
// Slurm's or told apart between restarts.
TEST(Log, TimestampIsIsoLocalTimeToTheSecond) {
  const auto when = std::chrono::system_clock::from_time_t(1796000523);  // 2026-11-30T01:02:03Z
  {
    ScopedTimeZone utc("UTC0");
    EXPECT_EQ(log_timestamp(when), "2026-11-30T01:02:03");
  }
  {
    ScopedTimeZone east("XXX-2");  // POSIX TZ: two hours east of UTC
    EXPECT_EQ(log_timestamp(when), "2026-11-30T03:02:03");
  }
}

TEST(Log, EveryLineStartsWithTheTime) {
  ::testing::internal::CaptureStderr();
  log_line(LogLevel::kWarning, "disk almost full");
  const std::string line = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(std::regex_match(
      line,
      std::regex(
          R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d ctmq(\[rank \d+\])? warning: disk almost full\n)")))
      << line;
}

TEST(Log, LinesBelowTheMinimumLevelAreDropped) {
  ::testing::internal::CaptureStderr();
  log_line(LogLevel::kDebug, "not shown");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

}  // namespace
}  // namespace ctmq
