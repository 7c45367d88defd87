// Logging to stderr, one line per message, tagged with the MPI rank.
//
// Thread-safe. The rank tag is set once by the distributed layer
// (set_log_rank); before that, lines carry no rank.
#pragma once

#include <sstream>
#include <string>

namespace ctmq {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

void set_log_rank(int rank);
void set_log_level(LogLevel minimum);
int log_rank();  // -1 until set_log_rank is called
void log_line(LogLevel level, const std::string& message);

}  // namespace ctmq

#define CTMQ_LOG(level, ...)                          \
  do {                                                \
    std::ostringstream ctmq_log_message_;             \
    ctmq_log_message_ << __VA_ARGS__;                 \
    ::ctmq::log_line(level, ctmq_log_message_.str()); \
  } while (0)
#define CTMQ_INFO(...) CTMQ_LOG(::ctmq::LogLevel::kInfo, __VA_ARGS__)
#define CTMQ_WARN(...) CTMQ_LOG(::ctmq::LogLevel::kWarning, __VA_ARGS__)
