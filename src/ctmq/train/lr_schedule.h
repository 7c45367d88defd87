// Learning rate as a function of the optimizer step: a linear warm-up from
// base_lr / warmup_steps to base_lr over the first `warmup_steps` steps, then
// cosine decay (SGD) or linear decay (Adam) to 0 at `total_steps`.
//
// A pure function of the step, so a resumed stage continues its schedule
// exactly from the checkpoint's global step.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "ctmq/train/train_options.h"

namespace ctmq::train {

enum class Decay { kCosine, kLinear };

class LrSchedule {
 public:
  // REQUIRES: total_steps >= 1, 0 <= warmup_steps <= total_steps.
  LrSchedule(double base_lr, Decay decay, int64_t warmup_steps, int64_t total_steps);
  // Learning rate of the update made at `step` (0-based).
  double at(int64_t step) const;

 private:
  double base_lr_;
  Decay decay_;
  int64_t warmup_steps_;
  int64_t total_steps_;
};

// The optimizer of a stage, reset at every stage (method.md): SGD (momentum,
// weight decay) or Adam (weight decay as given, 0 by default).
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const HyperParameters& h,
                                                        std::vector<torch::Tensor> parameters);
Decay decay_of(OptimizerKind kind);  // SGD: cosine; Adam: linear

// Sets the learning rate of every parameter group of `optimizer`.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace ctmq::train
