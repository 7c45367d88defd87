// The quantization one layer applies to its weight and to its input, and the
// interface through which a network switches every quantized layer at once.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

#include "ctmq/quant/bit_depths.h"
#include "ctmq/quant/quant_options.h"

namespace ctmq::quant {

// In-place SUM over ranks of every tensor in the vector (float64), called
// collectively; the same signature as model::StatsReducer.
using RankSum = std::function<void(std::vector<torch::Tensor>&)>;

// Implemented by QuantConv2dImpl and QuantLinearImpl; found in a network by
// dynamic_cast over Module::modules().
class QuantizedLayer {
 public:
  virtual ~QuantizedLayer() = default;
  // Weight bits quantize the weight, activation bits the layer's input.
  // Re-initialises k-dependent state (LSQ steps) when the depths change.
  virtual void set_bit_depths(BitDepths bits) = 0;
  virtual BitDepths bit_depths() const = 0;
  // Edge layers (first conv, last linear, 1x1 shortcuts) take
  // QuantOptions::edge_layer_bits for their weight and never quantize their input.
  virtual bool is_edge_layer() const = 0;
  // The real-valued weight the optimizer updates, and what forward() uses.
  virtual torch::Tensor latent_weight() const = 0;
  virtual torch::Tensor quantized_weight() const = 0;
  // With a sum over ranks installed, data-dependent initialisation (the LSQ
  // input step) uses the statistics of the global batch, so every rank starts
  // from the same value. Empty: this rank's batch alone.
  virtual void set_rank_sum(RankSum sum) = 0;
};

// State and dispatch shared by the quantized modules. Registered state:
//   "weight_step"  float [1] or [out_channels]   only with WeightQuantizer::kLsq
//   "input_step"   float [1]                     only with ActivationQuantizer::kLsq
//   "input_clip"   float [1], initially 1        only with ActivationQuantizer::kPact:
//                  PACT's alpha; it is not k-dependent and carries across stages
// A step of 0 means "not initialised yet": the weight step is set from the
// weight by set_bit_depths(); the input step from the first training batch
// (LSQ's 2 mean|x| / sqrt(Q_P)). NOTE: with several ranks that first batch
// differs per rank unless a RankSum is installed (set_rank_sum below, which
// the trainer installs whenever there are several ranks): then it is the
// global batch's, and every replica starts from the same step.
class LayerQuantizer {
 public:
  // Registers the state above on `owner`. Keeps the current bit depths (so
  // Cloneable::clone(), which calls reset() on a copy, preserves them).
  void reset(torch::nn::Module& owner, const QuantOptions& options, int64_t out_channels,
             bool quantize_input);
  void set_bit_depths(BitDepths bits, const torch::Tensor& weight);
  BitDepths bit_depths() const { return bits_; }

  torch::Tensor weight(const torch::Tensor& w) const;
  // `training`: whether an uninitialised LSQ input step may be set from x.
  torch::Tensor input(const torch::Tensor& x, bool training);
  std::string tag() const { return bits_.tag(); }
  void set_rank_sum(RankSum sum) { rank_sum_ = std::move(sum); }

 private:
  QuantOptions options_;
  bool quantize_input_ = true;
  BitDepths bits_;
  torch::Tensor weight_step_;
  torch::Tensor input_step_;
  torch::Tensor input_clip_;
  bool input_step_ready_ = false;
  RankSum rank_sum_;
};

// Installs `sum` into every quantized layer of `net` (an empty one removes
// it): their data-dependent initialisation then uses the global batch.
void set_rank_sum(torch::nn::Module& net, const RankSum& sum);

}  // namespace ctmq::quant
