#include "ctmq/train/stage_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/common/host_name.h"
#include "ctmq/common/log.h"

namespace ctmq::train {
namespace {

// Field 22 of /proc/PID/stat (start time in clock ticks since boot), or "" when
// the process does not exist.
std::string process_start_time(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!in || !std::getline(in, text)) return "";
  const auto close = text.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return "";
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return field;
  }
  return "";
}

std::string slurm_job_id() {
  const char* id = std::getenv("SLURM_JOB_ID");
  return id ? id : "";
}

nlohmann::json this_holder() {
  const long pid = static_cast<long>(::getpid());
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char when[32] = {};
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return {{"host", host_name()},
          {"pid", pid},
          {"start_time", process_start_time(pid)},
          {"slurm_job_id", slurm_job_id()},
          {"since", when}};
}

std::string describe(const nlohmann::json& h) {
  std::ostringstream s;
  s << "host " << h.value("host", "?") << " pid " << h.value("pid", 0L);
  const std::string job = h.value("slurm_job_id", "");
  if (!job.empty()) s << " (Slurm job " << job << ")";
  s << " since " << h.value("since", "?");
  return s.str();
}

// Why `holder` no longer holds the lock, or "" when it may still.
std::string stale_reason(const nlohmann::json& holder) {
  const std::string job = holder.value("slurm_job_id", "");
  if (!job.empty() && job == slurm_job_id())
    return "it names this Slurm job " + job + ", which was restarted";
  if (holder.value("host", "") != host_name()) return "";
  const long pid = holder.value("pid", 0L);
  if (pid <= 0) return "it names no process";
  const std::string started = process_start_time(pid);
  if (started.empty()) return "process " + std::to_string(pid) + " no longer exists";
  if (started != holder.value("start_time", ""))
    return "pid " + std::to_string(pid) + " was reused";
  return "";
}

// Creates `path` with `text` unless it exists; true when created.
bool create_exclusive(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    CTMQ_CHECK(errno == EEXIST, "cannot create the stage lock " << path << " ("
                                                                << std::strerror(errno)
                                                                << "); check the run directory");
    return false;
  }
  const ssize_t written = ::write(fd, text.data(), text.size());
  const bool ok = written == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    CTMQ_FAIL("cannot write the stage lock " << path << " (" << std::strerror(saved)
                                             << "); check free space");
  }
  return true;
}

}  // namespace

StageLock::StageLock(const std::string& stage_dir) : path_(stage_dir + "/LOCK") {
  std::error_code ec;
  std::filesystem::create_directories(stage_dir, ec);
  CTMQ_CHECK(!ec, "cannot create stage directory " << stage_dir << ": " << ec.message());
  holder_ = this_holder().dump() + "\n";
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (create_exclusive(path_, holder_)) return;
    std::string text;
    try {
      text = read_file(path_);
    } catch (const Error&) {
      continue;  // released between our attempt and the read: try again
    }
    nlohmann::json holder = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (holder.is_discarded() || !holder.is_object()) {
      // Empty or damaged: a writer that died between create and write.
      CTMQ_WARN("stage lock " << path_ << " is unreadable; taking it over");
      std::filesystem::remove(path_, ec);
      continue;
    }
    const std::string why = stale_reason(holder);
    CTMQ_CHECK(!why.empty(),
               "stage " << stage_dir << " is being trained by " << describe(holder) << " (lock "
                        << path_
                        << "). Two jobs must not train one stage: wait for it, or cancel it. If "
                           "that job is really gone (its node died), remove "
                        << path_ << " and rerun");
    CTMQ_WARN("taking over the stale stage lock " << path_ << " of " << describe(holder) << ": "
                                                  << why);
    std::filesystem::remove(path_, ec);
  }
  CTMQ_FAIL("cannot take the stage lock " << path_
                                          << " after 3 attempts: another process keeps taking it");
}

std::optional<StageLockHolder> read_stage_lock(const std::string& stage_dir) {
  const std::string path = stage_dir + "/LOCK";
  if (!std::filesystem::exists(path)) return std::nullopt;
  StageLockHolder result;
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error&) {
    return std::nullopt;  // released while we looked
  }
  const nlohmann::json holder = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (holder.is_discarded() || !holder.is_object()) {
    result.liveness = StageLockHolder::Liveness::kGone;
    result.description = "an unreadable lock " + path;
    return result;
  }
  result.host = holder.value("host", "");
  result.slurm_job_id = holder.value("slurm_job_id", "");
  result.description = describe(holder);
  if (result.host == host_name()) {
    const long pid = holder.value("pid", 0L);
    const std::string started = pid > 0 ? process_start_time(pid) : "";
    result.liveness = !started.empty() && started == holder.value("start_time", "")
                          ? StageLockHolder::Liveness::kAlive
                          : StageLockHolder::Liveness::kGone;
  }
  return result;
}

StageLock::~StageLock() {
  try {
    if (read_file(path_) == holder_) std::filesystem::remove(path_);
  } catch (...) {
    // Gone or unreadable: nothing of ours to remove.
  }
}

}  // namespace ctmq::train
