// A watchdog over one rank's collectives: it ends the rank when a collective
// has not completed within a timeout ([train] collective-timeout), when the
// communication library reports an asynchronous error (NCCL), or when a
// preemption signal arrived while a collective is stuck. Without it a dead or
// hung peer holds the whole allocation until its time limit, and a signal
// asking the job to checkpoint is never honoured (PyTorch's ProcessGroupNCCL
// watchdog and NCCL's ncclCommAbort are the model).
//
// The watchdog thread wakes every `tick` (a tenth of the timeout, between
// 50 ms and 1 s). When a collective has been in progress longer than the
// timeout it logs one error line naming this rank, its host, the collective
// and the time waited, runs the before-exit action (NCCL: ncclCommAbort, so
// the GPU kernels stop) and ends the process with ExitCode::kPeerLost (69),
// or kPreempted (75) when a preemption signal had arrived: the last
// checkpoint is intact and the stage continues from it when rerun (the
// timeout is then at most 60 s). The
// launcher (srun, mpirun) then ends the other ranks.
//
// Thread-safe: guards and watches may come from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>

namespace ctmq::dist {

// One collective the watchdog follows (internal).
struct Watched {
  std::string what;
  std::chrono::steady_clock::time_point since;
  std::function<bool()> done;  // empty for a blocking guard
};

class CollectiveWatchdog {
 public:
  // `rank` and `engine` ("MPI", "NCCL") are named in the messages.
  // timeout_s <= 0: no timeout, and none after a preemption signal either
  // (errors from the probe still end the rank). After a preemption signal
  // the timeout is at most 60 s.
  CollectiveWatchdog(int rank, std::string engine, double timeout_s);
  // Stops the thread; never ends the process.
  ~CollectiveWatchdog();
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

  double timeout_s() const { return timeout_s_; }
  // Run on the watchdog thread before the process ends.
  void set_before_exit(std::function<void()> action);
  // Polled every tick: a non-empty message (an asynchronous error) ends the
  // rank at once with ExitCode::kPeerLost.
  void set_error_probe(std::function<std::string()> probe);

  // A host-blocking collective in progress: from blocking() until the guard
  // is destroyed.
  class Guard {
   public:
    Guard(Guard&& other) noexcept;
    ~Guard();

   private:
    friend class CollectiveWatchdog;
    Guard(CollectiveWatchdog* owner, std::list<Watched>::iterator it) : owner_(owner), it_(it) {}
    CollectiveWatchdog* owner_;
    std::list<Watched>::iterator it_;
  };
  [[nodiscard]] Guard blocking(std::string what);
  // Asynchronous work (a collective enqueued on a GPU stream) in progress
  // until `done()` returns true; `done` is called from the watchdog thread.
  void watch(std::string what, std::function<bool()> done);

 private:
  void run();
  [[noreturn]] void end_rank(const std::string& message, int code);

  const int rank_;
  const std::string engine_;
  const double timeout_s_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::list<Watched> watched_;
  std::function<void()> before_exit_;
  std::function<std::string()> probe_;
  std::thread thread_;
};

}  // namespace ctmq::dist
