// Logging to stderr, one line per message, stamped with the local wall-clock
// time and tagged with the MPI rank:
//
//   2026-11-30T01:02:03 ctmq[rank 1] info: MESSAGE
//
// Thread-safe. The rank tag is set once by the distributed layer
// (set_log_rank); before that, lines carry no rank. The time is the local time
// (TZ) to the second, the same form as the shell runners' lines, so a job's
// log interleaves readably with Slurm's and the batch shell's.
#pragma once

#include <chrono>
#include <sstream>
#include <string>

namespace ctmq {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

void set_log_rank(int rank);
void set_log_level(LogLevel minimum);
int log_rank();  // -1 until set_log_rank is called
void log_line(LogLevel level, const std::string& message);

// ISO-8601 local time to the second without zone, "2026-11-30T01:02:03": the
// prefix of every log line (also used by the executables' error line).
std::string log_timestamp(
    std::chrono::system_clock::time_point when = std::chrono::system_clock::now());

}  // namespace ctmq

#define CTMQ_LOG(level, ...)                          \
  do {                                                \
    std::ostringstream ctmq_log_message_;             \
    ctmq_log_message_ << __VA_ARGS__;                 \
    ::ctmq::log_line(level, ctmq_log_message_.str()); \
  } while (0)
#define CTMQ_INFO(...) CTMQ_LOG(::ctmq::LogLevel::kInfo, __VA_ARGS__)
#define CTMQ_WARN(...) CTMQ_LOG(::ctmq::LogLevel::kWarning, __VA_ARGS__)
