// metrics.jsonl of a stage (docs/run-directory.md): one JSON object per logged
// step, appended and flushed line by line by rank 0.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

namespace ctmq::train {

struct StepMetrics {
  std::string stage;
  int w_bits = 32;
  int a_bits = 32;
  int64_t epoch = 0;
  int64_t step = 0;  // within the epoch, 1-based count of steps done
  int64_t global_step = 0;
  double loss = 0;      // mean over the samples of the logged steps, all ranks
  double accuracy = 0;  // training top-1 over the same samples
  double lr = 0;
  double images_per_s = 0;
  double elapsed_s = 0;
  int ranks = 1;
  // Seconds the training thread waited for its batch (data::BatchLoader::
  // next(); the data stall), mean over ranks: over the logged steps, and
  // since the start of this epoch (or of this process, when it resumed
  // mid-epoch) up to this record.
  double data_wait_s = 0;
  double epoch_data_wait_s = 0;
};

class MetricsLog {
 public:
  // Opens `path` for appending. When resuming from `resume_global_step`,
  // records with a larger global_step (written after that checkpoint by the
  // interrupted run) are dropped first, so the file never repeats a step.
  MetricsLog(std::string path, int64_t resume_global_step);
  void append(const StepMetrics& metrics);

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace ctmq::train
