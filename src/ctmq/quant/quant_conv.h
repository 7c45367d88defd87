// Conv2d with quantized weights and a quantized input, in LibTorch's module
// idiom. Parameter names match torch.nn.Conv2d ("weight" [out, in, k, k],
// optional "bias" [out]), so torchvision state_dicts map 1:1; LSQ state is
// added as "weight_step"/"input_step" (see layer_quantizer.h).
//
// Bit depths change on the live module (set_bit_depths); 32/32 (the default
// after construction) is an ordinary convolution.
#pragma once

#include <torch/torch.h>

#include "ctmq/quant/layer_quantizer.h"

namespace ctmq::quant {

struct QuantConv2dOptions {
  QuantConv2dOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, kernel_size);  // square kernels
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, padding) = 0;
  TORCH_ARG(bool, bias) = false;
  TORCH_ARG(QuantOptions, quant) = {};
  // An edge layer (see QuantizedLayer::is_edge_layer): its input is never quantized.
  TORCH_ARG(bool, edge_layer) = false;
};

class QuantConv2dImpl : public torch::nn::Cloneable<QuantConv2dImpl>, public QuantizedLayer {
 public:
  QuantConv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : QuantConv2dImpl(QuantConv2dOptions(in_channels, out_channels, kernel_size)) {}
  explicit QuantConv2dImpl(QuantConv2dOptions options);

  // Registers weight (and bias), initialised like torch.nn.Conv2d.
  void reset() override;
  // x: float [N, in_channels, H, W] -> [N, out_channels, H', W'].
  torch::Tensor forward(const torch::Tensor& x);
  void pretty_print(std::ostream& stream) const override;

  void set_bit_depths(BitDepths bits) override;
  BitDepths bit_depths() const override { return quantizer_.bit_depths(); }
  bool is_edge_layer() const override { return options.edge_layer(); }
  torch::Tensor latent_weight() const override { return weight; }
  torch::Tensor quantized_weight() const override { return quantizer_.weight(weight); }
  void set_rank_sum(RankSum sum) override { quantizer_.set_rank_sum(std::move(sum)); }

  QuantConv2dOptions options;
  torch::Tensor weight;
  torch::Tensor bias;  // undefined unless options.bias()

 private:
  LayerQuantizer quantizer_;
};
TORCH_MODULE(QuantConv2d);

}  // namespace ctmq::quant
