// The TensorBoard view of a stage's metrics (docs/training.md, "Progress and
// metrics"): RUN/tensorboard/STAGE/events.out.tfevents.*, written by rank 0
// beside metrics.jsonl, so `tensorboard --logdir RUN/tensorboard` shows every
// stage as its own run. Every scalar's step is the stage's global step and its
// value the metrics.jsonl field of the same record:
//   train/loss            StepMetrics::loss (mean cross-entropy)
//   train/accuracy        StepMetrics::accuracy (training top-1, fraction 0..1)
//   train/learning_rate   StepMetrics::lr
//   train/images_per_second  StepMetrics::images_per_s (all ranks)
//   eval/top1, eval/top5  EvalMetrics::top1 / top5 (percent; top5 with > 5 classes)
//   eval/loss             EvalMetrics::loss
// Each process that trains the stage starts a new event file (a resumed stage
// adds one; TensorBoard reads every file of the directory). A stage that starts
// from step 0 (no checkpoint) first removes the directory's earlier event
// files, as metrics.jsonl drops its records: they belong to an attempt that is
// being redone (or to a stage replaced by run-chain.sh --from). Steps redone
// after a resume from an earlier checkpoint appear again in the new file
// (a curve may show those steps twice).
#pragma once

#include <string>

#include "ctmq/train/event_file_writer.h"
#include "ctmq/train/metrics_log.h"

namespace ctmq::train {

class TensorBoardLog {
 public:
  // Opens a new event file in `directory` (RunLayout::tensorboard(stage));
  // with `fresh_start`, after removing the event files already there.
  TensorBoardLog(const std::string& directory, bool fresh_start);

  void append(const StepMetrics& metrics);
  void append(const EvalMetrics& metrics);

  const std::string& path() const { return writer_.path(); }

 private:
  EventFileWriter writer_;
};

}  // namespace ctmq::train
