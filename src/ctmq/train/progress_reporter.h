// Progress of a stage on stderr (rank 0 only): a live bar redrawn in place
// when stderr is a terminal, otherwise one plain line per report (job logs).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace ctmq::train {

class ProgressReporter {
 public:
  // `total_steps`: optimizer steps of the whole stage; `first_step`: where a
  // resumed stage starts (the ETA counts only the steps still to do).
  ProgressReporter(std::string stage, int64_t total_steps, int64_t first_step,
                   int64_t steps_per_epoch, bool enabled);
  // Reports after `global_step` steps; images_per_s is over all ranks;
  // data_wait is the fraction of the interval spent waiting for data.
  void report(int64_t global_step, double loss, double accuracy, double lr, double images_per_s,
              double data_wait = 0);
  void finish();

 private:
  std::string stage_;
  int64_t total_steps_;
  int64_t first_step_;
  int64_t steps_per_epoch_;
  bool enabled_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
};

// "1h02m", "3m05s", "12s".
std::string format_duration(double seconds);

}  // namespace ctmq::train
