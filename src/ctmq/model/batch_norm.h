// BatchNorm2d whose batch statistics can be synchronised across ranks.
//
// Names match torch.nn.BatchNorm2d: parameters "weight", "bias"; buffers
// "running_mean", "running_var", "num_batches_tracked".
//
// Without a StatsReducer (the default) forward() is torch::nn::BatchNorm2d's
// forward, bit for bit. With one, a training-mode forward sums (count, sum,
// sum of squares) per channel over ranks and normalises with the global mean
// and biased variance (running_var gets the unbiased one, as torch does), and
// backward sums the two per-channel sums the input gradient needs (sum dy,
// sum dy * x_hat), so every rank's input gradient equals that of one-process
// BatchNorm over the concatenated batch. The weight and bias gradients stay
// local: the trainer's gradient allreduce combines them like any parameter's.
// Evaluation mode never communicates.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace ctmq::model {

// In-place SUM over ranks of every tensor in the vector (float64, contiguous).
// Called collectively: once per training forward and once per backward of
// every BatchNorm2d, in the same order on every rank.
using StatsReducer = std::function<void(std::vector<torch::Tensor>&)>;

class BatchNorm2dImpl : public torch::nn::Cloneable<BatchNorm2dImpl> {
 public:
  explicit BatchNorm2dImpl(int64_t num_features)
      : BatchNorm2dImpl(torch::nn::BatchNormOptions(num_features)) {}
  explicit BatchNorm2dImpl(torch::nn::BatchNormOptions options);

  void reset() override;
  void reset_running_stats();
  // x: float [N, C, H, W] -> same shape.
  torch::Tensor forward(const torch::Tensor& x);
  void pretty_print(std::ostream& stream) const override;

  // An empty reducer switches synchronisation off. REQUIRES: the module
  // outlives every backward() of a graph built while a reducer was set.
  void set_stats_reducer(StatsReducer reducer) { reducer_ = std::move(reducer); }
  bool has_stats_reducer() const { return static_cast<bool>(reducer_); }

  torch::nn::BatchNormOptions options;
  torch::Tensor weight;               // [C], undefined unless options.affine()
  torch::Tensor bias;                 // [C], undefined unless options.affine()
  torch::Tensor running_mean;         // [C], undefined unless options.track_running_stats()
  torch::Tensor running_var;          // [C]
  torch::Tensor num_batches_tracked;  // int64 scalar

 private:
  torch::Tensor synchronized_forward(const torch::Tensor& x, double momentum);
  StatsReducer reducer_;
};
TORCH_MODULE(BatchNorm2d);

// Installs `reducer` into every BatchNorm2d of `net` (an empty one removes
// it). The quantized layers' sum over ranks is separate
// (quant::set_rank_sum): ranks with per-rank BatchNorm still need it.
void set_stats_reducer(torch::nn::Module& net, StatsReducer reducer);

}  // namespace ctmq::model
