#include "ctmq/dist/collective_watchdog.h"

#include <algorithm>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "ctmq/common/error.h"
#include "ctmq/common/host_name.h"
#include "ctmq/common/log.h"
#include "ctmq/common/preemption.h"

namespace ctmq::dist {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// After a preemption signal a stuck collective is given this long (or the
// timeout, if shorter) before the rank ends: the job's signal comes a couple
// of minutes before its time limit (site SIGNAL_SECONDS, 120 by default), and
// a healthy rank waits at most for rank 0's checkpoint write.
constexpr double kPreemptionGraceS = 60;

}  // namespace

CollectiveWatchdog::CollectiveWatchdog(int rank, std::string engine, double timeout_s)
    : rank_(rank), engine_(std::move(engine)), timeout_s_(timeout_s) {
  thread_ = std::thread([this] { run(); });
}

CollectiveWatchdog::~CollectiveWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void CollectiveWatchdog::set_before_exit(std::function<void()> action) {
  std::lock_guard<std::mutex> lock(mutex_);
  before_exit_ = std::move(action);
}

void CollectiveWatchdog::set_error_probe(std::function<std::string()> probe) {
  std::lock_guard<std::mutex> lock(mutex_);
  probe_ = std::move(probe);
}

CollectiveWatchdog::Guard CollectiveWatchdog::blocking(std::string what) {
  std::lock_guard<std::mutex> lock(mutex_);
  watched_.push_back({std::move(what), std::chrono::steady_clock::now(), {}});
  return Guard(this, std::prev(watched_.end()));
}

CollectiveWatchdog::Guard::Guard(Guard&& other) noexcept : owner_(other.owner_), it_(other.it_) {
  other.owner_ = nullptr;
}

CollectiveWatchdog::Guard::~Guard() {
  if (!owner_) return;
  std::lock_guard<std::mutex> lock(owner_->mutex_);
  owner_->watched_.erase(it_);
}

void CollectiveWatchdog::watch(std::string what, std::function<bool()> done) {
  std::lock_guard<std::mutex> lock(mutex_);
  watched_.push_back({std::move(what), std::chrono::steady_clock::now(), std::move(done)});
}

void CollectiveWatchdog::run() {
  const double tick_s = timeout_s_ > 0 ? std::clamp(timeout_s_ / 10, 0.05, 1.0) : 1.0;
  const auto tick = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(tick_s));
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, tick, [this] { return stopping_; })) {
    if (probe_) {
      const std::string error = probe_();
      if (!error.empty()) end_rank(engine_ + " reported an error: " + error, 0);
    }
    // Finished asynchronous work leaves the list.
    watched_.remove_if([](const Watched& w) { return w.done && w.done(); });
    if (watched_.empty()) continue;
    const Watched& oldest =
        *std::min_element(watched_.begin(), watched_.end(),
                          [](const Watched& a, const Watched& b) { return a.since < b.since; });
    const double waited = seconds_since(oldest.since);
    const bool preempted = preemption_requested();
    const double limit = preempted ? std::min(timeout_s_, kPreemptionGraceS) : timeout_s_;
    if (limit <= 0 || waited < limit) continue;
    std::ostringstream m;
    std::ostringstream after;
    after << std::fixed << std::setprecision(1) << waited;
    m << engine_ << " " << oldest.what << " has not completed after " << after.str() << " s";
    if (preempted) {
      m << " and a preemption signal (" << preemption_signal()
        << ") arrived; another rank cannot take part";
    } else {
      m << " ([train] collective-timeout = " << timeout_s_
        << " s): another rank died, hung or cannot be reached";
    }
    end_rank(m.str(), preempted ? static_cast<int>(ExitCode::kPreempted) : 0);
  }
}

void CollectiveWatchdog::end_rank(const std::string& message, int code) {
  if (code == 0) code = static_cast<int>(ExitCode::kPeerLost);
  std::ostringstream m;
  m << "rank " << rank_ << " on " << host_name() << ": " << message << "; ending this rank (exit "
    << code
    << "). The last checkpoint is intact: rerun the same command (or resubmit) to continue; "
       "NCCL_DEBUG=WARN and the other ranks' logs tell which rank failed first";
  log_line(LogLevel::kError, m.str());
  std::cerr.flush();
  if (before_exit_) before_exit_();
  std::_Exit(code);
}

}  // namespace ctmq::dist
