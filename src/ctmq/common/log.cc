#include "ctmq/common/log.h"

#include <atomic>
#include <ctime>
#include <iostream>
#include <mutex>

namespace ctmq {
namespace {
std::atomic<int> g_rank{-1};
std::atomic<int> g_minimum{static_cast<int>(LogLevel::kInfo)};
std::mutex g_mutex;

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}
}  // namespace

void set_log_rank(int rank) { g_rank = rank; }
int log_rank() { return g_rank; }
void set_log_level(LogLevel minimum) { g_minimum = static_cast<int>(minimum); }

std::string log_timestamp(std::chrono::system_clock::time_point when) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(when);
  std::tm local{};
  localtime_r(&seconds, &local);  // thread-safe, unlike std::localtime
  char text[32];
  const std::size_t length = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &local);
  return std::string(text, length);
}

void log_line(LogLevel level, const std::string& message) {
  if (static_cast<int>(level) < g_minimum) return;
  std::ostringstream line;
  line << log_timestamp() << " ctmq";
  if (g_rank >= 0) line << "[rank " << g_rank << "]";
  line << " " << level_name(level) << ": " << message << "\n";
  std::lock_guard<std::mutex> lock(g_mutex);
  std::cerr << line.str() << std::flush;
}

}  // namespace ctmq
