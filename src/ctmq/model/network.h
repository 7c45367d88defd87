// The networks ctmq trains, and the one factory that builds them.
//
// Every network is a NetworkImpl: a torch::nn::Module whose quantized layers
// can be switched to other bit depths on the live model (set_bit_depths), so a
// stage loads the previous stage's weights and continues at its own depths
// without rebuilding the model.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "ctmq/common/enum_names.h"
#include "ctmq/model/memory_format.h"
#include "ctmq/quant/bit_depths.h"
#include "ctmq/quant/quant_options.h"

namespace ctmq::model {

enum class Architecture {
  kResNet18,     // torchvision's resnet18: names, shapes, 11,689,512 params at 1000 classes
  kResNet20,     // CIFAR-style ResNet-20 (He et al. 2016), 0.27 M params at width 16
  kSmallResNet,  // a small ResNet for 28x28 inputs (Fashion-MNIST)
};
inline constexpr EnumTable<Architecture, 3> kArchitectureNames{{
    {Architecture::kResNet18, "resnet18"},
    {Architecture::kResNet20, "resnet20"},
    {Architecture::kSmallResNet, "small-resnet"},
}};

// "resnet18" | "resnet20" | "small-resnet"; throws ctmq::Error naming the
// accepted values otherwise.
Architecture parse_architecture(const std::string& name);
std::string architecture_name(Architecture arch);

// The residual block of every stage (docs/models.md).
enum class Block {
  // Bi-Real at every bit depth, full precision included: a real-valued
  // shortcut around each conv, the activation quantizer (at full precision its
  // limit, hardtanh for the signed quantizer) as the only nonlinearity, no
  // stem ReLU. One graph for every stage (method.md). Default.
  kBiReal,
  // torchvision's BasicBlock with ReLUs while activations are full precision,
  // Bi-Real once they are quantized: for importing torchvision weights only.
  // The switch to quantized activations changes the function, not just the
  // bit depth; convert such weights with a full-precision kBiReal stage first.
  kTorchvision,
};
inline constexpr EnumTable<Block, 2> kBlockNames{{
    {Block::kBiReal, "bi-real"},
    {Block::kTorchvision, "torchvision"},
}};
// "bi-real" | "torchvision"; throws ctmq::Error naming the accepted values.
Block parse_block(const std::string& name);
std::string block_name(Block block);

// The input normalisation a network was trained with, per input channel on
// the [0, 1] pixel scale: x = (pixel / 255 - mean[c]) / std_dev[c]. It belongs
// to the network (saved in network files from format 3) so that evaluation
// and every later consumer see inputs as training did, whatever the
// statistics of their own data. Empty when unknown (older files).
struct Preprocessing {
  std::vector<double> mean;
  std::vector<double> std_dev;
  bool known() const { return !mean.empty(); }
  bool operator==(const Preprocessing& o) const { return mean == o.mean && std_dev == o.std_dev; }
};

struct ModelOptions {
  Architecture architecture = Architecture::kSmallResNet;
  int64_t num_classes = 10;
  int64_t in_channels = 1;
  int64_t width = 16;  // channels of the first stage; resnet18 ignores it (64)
  Block block = Block::kBiReal;
  quant::QuantOptions quant;    // quantizer kinds and which layers stay full precision
  Preprocessing preprocessing;  // set by the trainer from its training data
};

class NetworkImpl : public torch::nn::Module {
 public:
  // x: float [N, in_channels, H, W]; returns logits [N, num_classes].
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  const ModelOptions& options() const { return options_; }
  quant::BitDepths bit_depths() const { return bits_; }
  // Switches every quantized layer to `bits` (k-dependent quantizer state is
  // re-initialised, latent weights and BatchNorm state are kept).
  void set_bit_depths(quant::BitDepths bits);

  // The memory format of the activations (docs/choices.md): forward converts
  // its input to it and every layer keeps it. kChannelsLast (NHWC strides, the
  // default) lets oneDNN and cuDNN convolve without reordering each activation;
  // kContiguous (NCHW) is torch's default layout. The function, parameters and
  // parameter layouts are the same either way; outputs differ by float
  // rounding only (tests/model/memory_format_test.cc).
  // Throws ctmq::Error for other formats.
  void set_memory_format(torch::MemoryFormat format);
  torch::MemoryFormat memory_format() const { return memory_format_; }

 protected:
  explicit NetworkImpl(ModelOptions options) : options_(std::move(options)) {}

 private:
  ModelOptions options_;
  quant::BitDepths bits_;
  torch::MemoryFormat memory_format_ = torch::MemoryFormat::ChannelsLast;
};

// Builds the network of `options`, at full precision.
std::shared_ptr<NetworkImpl> make_network(const ModelOptions& options);

}  // namespace ctmq::model
