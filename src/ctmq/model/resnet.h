// The ResNets of ctmq, all built from one BasicBlock that serves every stage.
//
// Block forms (docs/models.md):
//   Bi-Real (Block::kBiReal, every bit depth): a real-valued shortcut around
//   each conv and the activation quantizer Q_a as the only nonlinearity
//       mid = bn1(conv1(Q_a(x))) + shortcut(x)
//       out = bn2(conv2(Q_a(mid))) + mid
//   where at full-precision activations Q_a is its limit (hardtanh for the
//   signed quantizer), so every stage runs the same function up to rounding.
//   No stem ReLU.
//   torchvision (Block::kTorchvision), only while activations are full precision:
//       out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), stem ReLU;
//   Bi-Real once activations are quantized.
// Both forms have the same parameters, so weights load across them.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "ctmq/model/batch_norm.h"
#include "ctmq/model/network.h"
#include "ctmq/quant/quant_conv.h"
#include "ctmq/quant/quant_linear.h"

namespace ctmq::model {

class BasicBlockImpl : public torch::nn::Module {
 public:
  // A 1x1 stride-`stride` conv + BN shortcut ("downsample.0", "downsample.1")
  // is added when stride != 1 or in_planes != planes.
  BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride,
                 const quant::QuantOptions& quant, Block block = Block::kBiReal);
  torch::Tensor forward(const torch::Tensor& x);

  quant::QuantConv2d conv1{nullptr};
  BatchNorm2d bn1{nullptr};
  quant::QuantConv2d conv2{nullptr};
  BatchNorm2d bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};  // empty handle for an identity shortcut

 private:
  Block block_ = Block::kBiReal;
};
TORCH_MODULE(BasicBlock);

// Layout of a ResNet: stem kind, then stages of BasicBlocks.
struct ResNetLayout {
  bool imagenet_stem = false;    // 7x7/2 conv + 3x3/2 max pool; else a 3x3/1 conv
  std::vector<int64_t> planes;   // channels per stage
  std::vector<int64_t> blocks;   // blocks per stage
  std::vector<int64_t> strides;  // stride of each stage's first block
};

// The layout of `options.architecture` at `options.width`.
ResNetLayout resnet_layout(const ModelOptions& options);

class ResNetImpl : public NetworkImpl {
 public:
  explicit ResNetImpl(const ModelOptions& options);
  torch::Tensor forward(torch::Tensor x) override;

 private:
  quant::QuantConv2d conv1_{nullptr};
  BatchNorm2d bn1_{nullptr};
  bool imagenet_stem_ = false;
  Block block_ = Block::kBiReal;
  std::vector<torch::nn::Sequential> stages_;  // "layer1", "layer2", ...
  quant::QuantLinear fc_{nullptr};
};

}  // namespace ctmq::model
