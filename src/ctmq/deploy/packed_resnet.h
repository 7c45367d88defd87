// Inference of a packed W1A1 ResNet (docs/packed-format.md) on the CPU:
// binary convolutions through deploy/binary_conv.h, the full-precision stem,
// 1x1 shortcuts and classifier through LibTorch, in the Bi-Real block of
// model/resnet.h:
//   mid = binconv1(x) + shortcut(x)     (binconv: BatchNorm folded in)
//   out = binconv2(mid) + mid
// Its logits equal the trained network's evaluation-mode logits up to float
// rounding; where a rounding difference moves an activation across the
// quantizer's threshold the two can differ by one binary tap (docs/deploy.md).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "ctmq/deploy/binary_conv.h"
#include "ctmq/deploy/packed_format.h"

namespace ctmq::deploy {

class PackedResNet {
 public:
  // Checks every tensor against the architecture's layout
  // (model::resnet_layout); throws ctmq::Error naming `source` and the tensor
  // when one is missing, unexpected or of another shape.
  PackedResNet(PackedModel model, const std::string& source);

  // x: float [N, in_channels, H, W], normalised with preprocessing() (as
  // data::ShardDataset::get_batch does); returns float logits [N, num_classes].
  // Images are split over LibTorch's intra-op threads (at::parallel_for).
  torch::Tensor forward(const torch::Tensor& x, KernelPath path = KernelPath::kAuto) const;

  const model::ModelOptions& options() const { return model_.options; }
  const model::Preprocessing& preprocessing() const { return model_.options.preprocessing; }
  InputCoding input_coding() const { return model_.input_coding; }

 private:
  struct FloatConv {
    torch::Tensor weight, bias;
    int64_t stride = 1, padding = 0;
  };
  struct BinaryConv {
    PackedBinaryConv conv;
    torch::Tensor scale, bias;
  };
  struct Block {
    BinaryConv conv1, conv2;
    bool has_downsample = false;
    FloatConv downsample;
  };

  torch::Tensor binary(const BinaryConv& layer, const torch::Tensor& x, KernelPath path) const;

  PackedModel model_;
  bool imagenet_stem_ = false;
  FloatConv stem_;
  std::vector<Block> blocks_;
  torch::Tensor fc_weight_, fc_bias_;
};

// Reads and checks a packed file.
PackedResNet load_packed_resnet(const std::string& path);

}  // namespace ctmq::deploy
