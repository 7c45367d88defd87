// Evaluation on the test set during a stage ([train] eval-every = N): after
// every N-th epoch except the last (ctmq-eval scores the final weights), the
// current network is evaluated by eval::evaluate (eval mode, running
// BatchNorm statistics, no gradient) on every rank, each rank its slice of
// the test set, and left in train mode again.
//
// It does not change training: evaluation reads the parameters and buffers
// without writing them (BatchNorm in eval mode updates no running statistics)
// and draws no random numbers, so a stage's weights are bit-identical with and
// without it (tests/train/live_metrics_test.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ctmq/data/shard_dataset.h"
#include "ctmq/dist/communicator.h"
#include "ctmq/model/network.h"
#include "ctmq/train/metrics_log.h"

namespace ctmq::train {

class StageEvaluation {
 public:
  // Opens `test_manifest` (the [data] test-manifest of ctmq-eval) and
  // normalises its images as `net` is trained (eval::normalise_as_trained).
  // `every_epochs` >= 1; evaluates the first `test_limit` images (0 = all) in
  // forward passes of `batch` images per rank. Throws ctmq::Error naming
  // [data] test-manifest when the file is missing or its class count differs.
  StageEvaluation(const std::string& test_manifest, int64_t test_limit, int64_t every_epochs,
                  int64_t batch, torch::Device device, const model::NetworkImpl& net);

  // True when `global_step` ends an epoch that is a multiple of every_epochs
  // and more steps follow.
  bool due(int64_t global_step, int64_t steps_per_epoch, int64_t total_steps) const;

  // Evaluates `net` (collective: every rank calls it) after `global_step`
  // steps and returns the result with the stage fields left empty; `net` is
  // back in train mode afterwards.
  EvalMetrics run(model::NetworkImpl& net, int64_t global_step, int64_t steps_per_epoch,
                  dist::Communicator& comm) const;

 private:
  data::ShardDataset test_;
  int64_t limit_;
  int64_t every_epochs_;
  int64_t batch_;
  torch::Device device_;
};

}  // namespace ctmq::train
