#include "ctmq/deploy/packed_resnet.h"

#include <ATen/Parallel.h>

#include <set>

#include "ctmq/common/error.h"
#include "ctmq/model/resnet.h"

namespace ctmq::deploy {
namespace {

// Takes the tensors of a packed model by name, checking their shapes.
class TensorTaker {
 public:
  TensorTaker(PackedModel& model, const std::string& source) : model_(model), source_(source) {}

  torch::Tensor floats(const std::string& name, const std::vector<int64_t>& shape) {
    auto it = model_.floats.find(name);
    CTMQ_CHECK(it != model_.floats.end(), "packed model file " << source_
                                                               << " has no float32 tensor " << name
                                                               << "; re-export it");
    CTMQ_CHECK(it->second.sizes().vec() == shape,
               "packed model file " << source_ << ": tensor " << name << " has shape "
                                    << it->second.sizes() << ", the architecture needs "
                                    << torch::IntArrayRef(shape));
    taken_.insert(name);
    return it->second;
  }

  std::vector<uint64_t> bits(const std::string& name, const std::vector<int64_t>& shape) {
    auto it = model_.bits.find(name);
    CTMQ_CHECK(it != model_.bits.end(), "packed model file " << source_ << " has no uint64 tensor "
                                                             << name << "; re-export it");
    CTMQ_CHECK(it->second.shape == shape,
               "packed model file " << source_ << ": tensor " << name << " has shape "
                                    << torch::IntArrayRef(it->second.shape)
                                    << ", the architecture needs " << torch::IntArrayRef(shape));
    taken_.insert(name);
    return it->second.words;
  }

  // Every tensor of the file must belong to the architecture.
  void check_all_taken() const {
    for (const auto& [name, t] : model_.floats)
      CTMQ_CHECK(taken_.count(name), "packed model file " << source_ << " has tensor " << name
                                                          << ", which the architecture lacks");
    for (const auto& [name, t] : model_.bits)
      CTMQ_CHECK(taken_.count(name), "packed model file " << source_ << " has tensor " << name
                                                          << ", which the architecture lacks");
  }

 private:
  PackedModel& model_;
  std::string source_;
  std::set<std::string> taken_;
};

int64_t words_for(int64_t in_channels, int64_t kernel) {
  return (in_channels * kernel * kernel + 63) / 64;
}

}  // namespace

PackedResNet::PackedResNet(PackedModel model, const std::string& source)
    : model_(std::move(model)) {
  const model::ModelOptions& o = model_.options;
  const model::ResNetLayout layout = model::resnet_layout(o);
  imagenet_stem_ = layout.imagenet_stem;
  TensorTaker take(model_, source);
  const int64_t stem = layout.planes[0];
  const int64_t stem_kernel = imagenet_stem_ ? 7 : 3;
  stem_.weight = take.floats("conv1.weight", {stem, o.in_channels, stem_kernel, stem_kernel});
  stem_.bias = take.floats("conv1.bias", {stem});
  stem_.stride = imagenet_stem_ ? 2 : 1;
  stem_.padding = imagenet_stem_ ? 3 : 1;
  auto binary_conv = [&](const std::string& name, int64_t in, int64_t out, int64_t stride) {
    BinaryConvGeometry g{in, out, 3, stride, 1};
    PackedBinaryConv conv(g, take.bits(name + ".weight_bits", {out, words_for(in, 3)}));
    return BinaryConv{std::move(conv), take.floats(name + ".scale", {out}),
                      take.floats(name + ".bias", {out})};
  };
  int64_t in = stem;
  for (size_t s = 0; s < layout.planes.size(); ++s) {
    for (int64_t b = 0; b < layout.blocks[s]; ++b) {
      const std::string name = "layer" + std::to_string(s + 1) + "." + std::to_string(b) + ".";
      const int64_t out = layout.planes[s];
      const int64_t stride = b == 0 ? layout.strides[s] : 1;
      Block block{binary_conv(name + "conv1", in, out, stride),
                  binary_conv(name + "conv2", out, out, 1),
                  false,
                  {}};
      if (stride != 1 || in != out) {
        block.has_downsample = true;
        block.downsample.weight = take.floats(name + "downsample.0.weight", {out, in, 1, 1});
        block.downsample.bias = take.floats(name + "downsample.0.bias", {out});
        block.downsample.stride = stride;
      }
      blocks_.push_back(std::move(block));
      in = out;
    }
  }
  fc_weight_ = take.floats("fc.weight", {o.num_classes, in});
  fc_bias_ = take.floats("fc.bias", {o.num_classes});
  take.check_all_taken();
}

torch::Tensor PackedResNet::binary(const BinaryConv& layer, const torch::Tensor& x,
                                   KernelPath path) const {
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  const PackedBinaryConv& conv = layer.conv;
  const int64_t out_channels = conv.geometry().out_channels;
  torch::Tensor out =
      torch::empty({n, out_channels, conv.output_size(h), conv.output_size(w)}, x.options());
  const int64_t in_image = x[0].numel(), out_image = out_channels * out.size(2) * out.size(3);
  const float* input = x.data_ptr<float>();
  float* output = out.data_ptr<float>();
  const float* scale = layer.scale.data_ptr<float>();
  const float* bias = layer.bias.data_ptr<float>();
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    conv.forward(input + begin * in_image, end - begin, h, w, model_.input_coding, scale, bias,
                 output + begin * out_image, path);
  });
  return out;
}

torch::Tensor PackedResNet::forward(const torch::Tensor& input, KernelPath path) const {
  torch::NoGradGuard no_grad;
  CTMQ_CHECK(input.dim() == 4 && input.size(1) == options().in_channels,
             "packed network input has shape " << input.sizes() << "; expected [N, "
                                               << options().in_channels << ", H, W]");
  torch::Tensor x = input.to(torch::kFloat).contiguous();
  x = torch::conv2d(x, stem_.weight, stem_.bias, torch::IntArrayRef{stem_.stride, stem_.stride},
                    torch::IntArrayRef{stem_.padding, stem_.padding});
  if (imagenet_stem_) x = torch::max_pool2d(x, 3, 2, 1);
  for (const Block& block : blocks_) {
    x = x.contiguous();
    const torch::Tensor shortcut =
        block.has_downsample
            ? torch::conv2d(x, block.downsample.weight, block.downsample.bias,
                            torch::IntArrayRef{block.downsample.stride, block.downsample.stride},
                            torch::IntArrayRef{0, 0})
            : x;
    const torch::Tensor mid = binary(block.conv1, x, path).add_(shortcut);
    x = binary(block.conv2, mid, path).add_(mid);
  }
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  return torch::linear(x, fc_weight_, fc_bias_);
}

PackedResNet load_packed_resnet(const std::string& path) {
  return PackedResNet(read_packed(path), path);
}

}  // namespace ctmq::deploy
