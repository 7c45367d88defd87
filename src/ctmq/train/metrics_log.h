// metrics.jsonl of a stage (docs/run-directory.md): one JSON object per logged
// step ("kind": "train") and per in-stage evaluation ("kind": "eval"),
// appended and flushed line by line by rank 0.
#pragma once

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

namespace ctmq::train {

struct StepMetrics {
  std::string stage;
  int w_bits = 32;
  int a_bits = 32;
  int64_t epoch = 0;
  int64_t step = 0;  // within the epoch, 1-based count of steps done
  int64_t global_step = 0;
  int64_t total_steps = 0;  // optimizer steps of the whole stage (epochs x steps per epoch)
  double loss = 0;          // mean over the samples of the logged steps, all ranks
  double accuracy = 0;      // training top-1 over the same samples
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

// The test-set evaluation after an epoch ([train] eval-every): the network in
// eval mode with its running BatchNorm statistics (eval::evaluate).
struct EvalMetrics {
  std::string stage;
  int w_bits = 32;
  int a_bits = 32;
  int64_t epoch = 0;  // 0-based index of the epoch just completed, as in StepMetrics
  int64_t step = 0;   // steps of that epoch: the epoch's last StepMetrics::step
  int64_t global_step = 0;
  int64_t samples = 0;         // test images evaluated
  double top1 = 0;             // percent
  std::optional<double> top5;  // percent; only with more than 5 classes
  double loss = 0;             // mean cross-entropy per test image
  double eval_s = 0;           // wall time of the evaluation
  double elapsed_s = 0;        // since this process started the stage, as StepMetrics
};

class MetricsLog {
 public:
  // Opens `path` for appending. When resuming from `resume_global_step`,
  // records with a larger global_step (written after that checkpoint by the
  // interrupted run) are dropped first, so the file never repeats a step.
  MetricsLog(std::string path, int64_t resume_global_step);
  void append(const StepMetrics& metrics);
  void append(const EvalMetrics& metrics);

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace ctmq::train
