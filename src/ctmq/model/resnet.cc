#include "ctmq/model/resnet.h"

#include "ctmq/common/error.h"

namespace ctmq::model {
namespace {

bool activations_quantized(const quant::QuantConv2d& conv) {
  return conv->bit_depths().activation != quant::kFullPrecisionBits;
}

// The quantizer options of a block's convolutions: the full-precision limit of
// the activation quantizer is the nonlinearity only in the Bi-Real block.
quant::QuantOptions block_quant(quant::QuantOptions quant, Block block) {
  quant.full_precision_limit = block == Block::kBiReal;
  return quant;
}

quant::QuantConv2d make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                             int64_t padding, bool edge, const quant::QuantOptions& quant) {
  quant::QuantConv2d conv(quant::QuantConv2dOptions(in, out, kernel)
                              .stride(stride)
                              .padding(padding)
                              .bias(false)
                              .quant(quant)
                              .edge_layer(edge));
  // torchvision's ResNet initialisation.
  torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
  return conv;
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride,
                               const quant::QuantOptions& options, Block block)
    : block_(block) {
  const quant::QuantOptions quant = block_quant(options, block);
  conv1 = register_module("conv1", make_conv(in_planes, planes, 3, stride, 1, false, quant));
  bn1 = register_module("bn1", BatchNorm2d(planes));
  conv2 = register_module("conv2", make_conv(planes, planes, 3, 1, 1, false, quant));
  bn2 = register_module("bn2", BatchNorm2d(planes));
  if (stride != 1 || in_planes != planes) {
    downsample = register_module(
        "downsample", torch::nn::Sequential(make_conv(in_planes, planes, 1, stride, 0, true, quant),
                                            BatchNorm2d(planes)));
  }
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  const torch::Tensor shortcut = downsample ? downsample->forward(x) : x;
  if (block_ == Block::kTorchvision && !activations_quantized(conv1)) {
    torch::Tensor out = torch::relu(bn1->forward(conv1->forward(x)));
    out = bn2->forward(conv2->forward(out));
    return torch::relu(out + shortcut);
  }
  const torch::Tensor mid = bn1->forward(conv1->forward(x)) + shortcut;
  return bn2->forward(conv2->forward(mid)) + mid;
}

ResNetLayout resnet_layout(const ModelOptions& options) {
  const int64_t w = options.width;
  switch (options.architecture) {
    case Architecture::kResNet18:
      return {true, {64, 128, 256, 512}, {2, 2, 2, 2}, {1, 2, 2, 2}};
    case Architecture::kResNet20:
      return {false, {w, 2 * w, 4 * w}, {3, 3, 3}, {1, 2, 2}};
    case Architecture::kSmallResNet:
      // Every stage halves the resolution (28 -> 14 -> 7 -> 4): ~2.7 M multiply-adds
      // per 28x28 image at width 16, fast enough to train on a few CPU cores.
      return {false, {w, 2 * w, 4 * w}, {1, 1, 1}, {2, 2, 2}};
  }
  CTMQ_ASSERT(false);
  return {};
}

ResNetImpl::ResNetImpl(const ModelOptions& options) : NetworkImpl(options) {
  CTMQ_CHECK(options.num_classes >= 1,
             "model option num_classes is " << options.num_classes << "; it must be >= 1");
  CTMQ_CHECK(options.in_channels >= 1,
             "model option in_channels is " << options.in_channels << "; it must be >= 1");
  CTMQ_CHECK(options.width >= 1, "model option width is " << options.width << "; it must be >= 1");
  CTMQ_CHECK(quant::is_valid_bits(options.quant.edge_layer_bits),
             "quantizer option edge_layer_bits is " << options.quant.edge_layer_bits
                                                    << "; use 1..8 or 32");
  const ResNetLayout layout = resnet_layout(options);
  imagenet_stem_ = layout.imagenet_stem;
  block_ = options.block;
  const int64_t stem = layout.planes[0];
  conv1_ = register_module(
      "conv1", imagenet_stem_ ? make_conv(options.in_channels, stem, 7, 2, 3, true, options.quant)
                              : make_conv(options.in_channels, stem, 3, 1, 1, true, options.quant));
  bn1_ = register_module("bn1", BatchNorm2d(stem));
  int64_t in_planes = stem;
  for (size_t s = 0; s < layout.planes.size(); ++s) {
    torch::nn::Sequential stage;
    for (int64_t b = 0; b < layout.blocks[s]; ++b) {
      stage->push_back(BasicBlock(in_planes, layout.planes[s], b == 0 ? layout.strides[s] : 1,
                                  options.quant, options.block));
      in_planes = layout.planes[s];
    }
    stages_.push_back(register_module("layer" + std::to_string(s + 1), stage));
  }
  fc_ = register_module("fc",
                        quant::QuantLinear(quant::QuantLinearOptions(in_planes, options.num_classes)
                                               .quant(options.quant)
                                               .edge_layer(true)));
}

torch::Tensor ResNetImpl::forward(torch::Tensor x) {
  CTMQ_CHECK(x.dim() == 4 && x.size(1) == options().in_channels,
             "network input has shape " << x.sizes() << "; expected [N, " << options().in_channels
                                        << ", H, W]");
  x = bn1_->forward(conv1_->forward(x.contiguous(memory_format())));
  if (block_ == Block::kTorchvision && bit_depths().activation == quant::kFullPrecisionBits)
    x = torch::relu(x);
  if (imagenet_stem_) x = torch::max_pool2d(x, 3, 2, 1);
  for (auto& stage : stages_) x = stage->forward(x);
  // The pool's backward returns NCHW: back to the activations' format.
  x = gradient_in_format(x, memory_format());
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  return fc_->forward(x);
}

}  // namespace ctmq::model
