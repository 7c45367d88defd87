#include "ctmq/train/lr_schedule.h"

#include <cmath>

#include "ctmq/common/error.h"

namespace ctmq::train {

LrSchedule::LrSchedule(double base_lr, Decay decay, int64_t warmup_steps, int64_t total_steps)
    : base_lr_(base_lr), decay_(decay), warmup_steps_(warmup_steps), total_steps_(total_steps) {
  CTMQ_ASSERT(total_steps >= 1 && warmup_steps >= 0 && warmup_steps <= total_steps);
}

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps_) return base_lr_ * static_cast<double>(step + 1) / warmup_steps_;
  const int64_t span = total_steps_ - warmup_steps_;
  if (span <= 0) return base_lr_;
  const double progress =
      std::min(1.0, static_cast<double>(step - warmup_steps_) / static_cast<double>(span));
  if (decay_ == Decay::kCosine) return base_lr_ * 0.5 * (1.0 + std::cos(M_PI * progress));
  return base_lr_ * (1.0 - progress);
}

Decay decay_of(OptimizerKind kind) {
  return kind == OptimizerKind::kAdam ? Decay::kLinear : Decay::kCosine;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const HyperParameters& h,
                                                        std::vector<torch::Tensor> parameters) {
  CTMQ_ASSERT(h.optimizer != OptimizerKind::kAuto);
  if (h.optimizer == OptimizerKind::kAdam) {
    return std::make_unique<torch::optim::Adam>(
        std::move(parameters), torch::optim::AdamOptions(h.lr).weight_decay(h.weight_decay));
  }
  return std::make_unique<torch::optim::SGD>(
      std::move(parameters),
      torch::optim::SGDOptions(h.lr).momentum(h.momentum).weight_decay(h.weight_decay));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) {
    auto& options = group.options();
    if (auto* sgd = dynamic_cast<torch::optim::SGDOptions*>(&options)) {
      sgd->lr(lr);
    } else if (auto* adam = dynamic_cast<torch::optim::AdamOptions*>(&options)) {
      adam->lr(lr);
    } else {
      CTMQ_ASSERT(false && "unsupported optimizer options");
    }
  }
}

}  // namespace ctmq::train
