// Linear layer with a quantized weight and a quantized input, in LibTorch's
// module idiom. Parameter names match torch.nn.Linear ("weight" [out, in],
// "bias" [out]); LSQ state as in layer_quantizer.h. 32/32 bits (the default) is
// an ordinary linear layer.
#pragma once

#include <torch/torch.h>

#include "ctmq/quant/layer_quantizer.h"

namespace ctmq::quant {

struct QuantLinearOptions {
  QuantLinearOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  TORCH_ARG(bool, bias) = true;
  TORCH_ARG(QuantOptions, quant) = {};
  // An edge layer (see QuantizedLayer::is_edge_layer): its input is never quantized.
  TORCH_ARG(bool, edge_layer) = false;
};

class QuantLinearImpl : public torch::nn::Cloneable<QuantLinearImpl>, public QuantizedLayer {
 public:
  QuantLinearImpl(int64_t in_features, int64_t out_features)
      : QuantLinearImpl(QuantLinearOptions(in_features, out_features)) {}
  explicit QuantLinearImpl(QuantLinearOptions options);

  // Registers weight and bias, initialised like torch.nn.Linear.
  void reset() override;
  // x: float [N, in_features] -> [N, out_features].
  torch::Tensor forward(const torch::Tensor& x);
  void pretty_print(std::ostream& stream) const override;

  void set_bit_depths(BitDepths bits) override;
  BitDepths bit_depths() const override { return quantizer_.bit_depths(); }
  bool is_edge_layer() const override { return options.edge_layer(); }
  torch::Tensor latent_weight() const override { return weight; }
  torch::Tensor quantized_weight() const override { return quantizer_.weight(weight); }
  void set_rank_sum(RankSum sum) override { quantizer_.set_rank_sum(std::move(sum)); }

  QuantLinearOptions options;
  torch::Tensor weight;
  torch::Tensor bias;  // undefined unless options.bias()

 private:
  LayerQuantizer quantizer_;
};
TORCH_MODULE(QuantLinear);

}  // namespace ctmq::quant
