#include "ctmq/deploy/packed_export.h"

#include "ctmq/common/error.h"
#include "ctmq/common/version.h"
#include "ctmq/model/batch_norm.h"
#include "ctmq/model/resnet.h"
#include "ctmq/quant/quant_conv.h"
#include "ctmq/quant/quant_linear.h"

namespace ctmq::deploy {
namespace {

using ModuleMap = torch::OrderedDict<std::string, std::shared_ptr<torch::nn::Module>>;

template <typename T>
T& module_at(const ModuleMap& modules, const std::string& name, const std::string& source) {
  const auto* found = modules.find(name);
  CTMQ_CHECK(found != nullptr,
             "network file " << source << " has no module " << name << "; is it a ctmq ResNet?");
  auto* typed = dynamic_cast<T*>(found->get());
  CTMQ_CHECK(typed != nullptr,
             "network file " << source << ": module " << name << " is not of the expected kind");
  return *typed;
}

// BatchNorm in evaluation mode as y = g x + h per channel (float64).
struct Affine {
  torch::Tensor g, h;
};
Affine fold(const model::BatchNorm2dImpl& bn) {
  const torch::Tensor var = bn.running_var.to(torch::kDouble);
  const torch::Tensor inv_std = (var + bn.options.eps()).rsqrt();
  const torch::Tensor gamma =
      bn.weight.defined() ? bn.weight.to(torch::kDouble) : torch::ones_like(var);
  const torch::Tensor beta =
      bn.bias.defined() ? bn.bias.to(torch::kDouble) : torch::zeros_like(var);
  const torch::Tensor g = gamma * inv_std;
  return {g, beta - bn.running_mean.to(torch::kDouble) * g};
}

torch::Tensor as_float(const torch::Tensor& t) { return t.to(torch::kFloat).contiguous().clone(); }

// A full-precision convolution (its quantized weight when edge layers are
// quantized) with the BatchNorm after it folded in.
void add_float_conv(PackedModel& out, const std::string& name, quant::QuantConv2dImpl& conv,
                    const model::BatchNorm2dImpl& bn) {
  const Affine a = fold(bn);
  torch::Tensor w = conv.quantized_weight().to(torch::kDouble);
  torch::Tensor b = a.h;
  if (conv.bias.defined()) b = b + conv.bias.to(torch::kDouble) * a.g;
  out.floats[name + ".weight"] = as_float(w * a.g.view({-1, 1, 1, 1}));
  out.floats[name + ".bias"] = as_float(b);
}

// A binary convolution: sign bits, scale = alpha g (times PACT's clip), bias h.
void add_binary_conv(PackedModel& out, const std::string& name, quant::QuantConv2dImpl& conv,
                     const model::BatchNorm2dImpl& bn) {
  CTMQ_ASSERT(!conv.options.bias());
  const torch::Tensor w = conv.weight.detach().to(torch::kFloat).contiguous();
  BinaryConvGeometry geometry;
  geometry.in_channels = conv.options.in_channels();
  geometry.out_channels = conv.options.out_channels();
  geometry.kernel = conv.options.kernel_size();
  geometry.stride = conv.options.stride();
  geometry.padding = conv.options.padding();
  const PackedBinaryConv packed = PackedBinaryConv::from_weights(w.data_ptr<float>(), geometry);
  out.bits[name + ".weight_bits"] = {{geometry.out_channels, packed.words_per_filter()},
                                     packed.words()};
  // alpha = mean |W| per output channel, as quant::binary_weight computes it.
  torch::Tensor alpha = w.abs().reshape({w.size(0), -1}).mean(1).to(torch::kDouble);
  for (const auto& p : conv.named_parameters(false))
    if (p.key() == "input_clip") alpha = alpha * p.value().to(torch::kDouble).reshape({});
  const Affine a = fold(bn);
  out.floats[name + ".scale"] = as_float(alpha * a.g);
  out.floats[name + ".bias"] = as_float(a.h);
}

}  // namespace

PackedModel pack_network(model::NetworkImpl& net, const std::string& source) {
  torch::NoGradGuard no_grad;
  const model::ModelOptions& o = net.options();
  CTMQ_CHECK((net.bit_depths() == quant::BitDepths{1, 1}),
             "network file " << source << " is at " << net.bit_depths().tag()
                             << "; only W1A1 stages export to the packed format (version 1); "
                                "export the target stage of the chain");
  CTMQ_CHECK(o.preprocessing.known(),
             "network file " << source
                             << " does not record its input normalisation (format < 3); "
                                "re-save it with this ctmq (train the stage again) to export it");
  PackedModel out;
  out.options = o;
  out.input_coding = o.quant.activation == quant::ActivationQuantizer::kUnsigned
                         ? InputCoding::kUnsigned
                         : InputCoding::kSigned;
  out.ctmq_version = CTMQ_VERSION;
  out.source = source;
  const ModuleMap modules = net.named_modules("", false);
  add_float_conv(out, "conv1", module_at<quant::QuantConv2dImpl>(modules, "conv1", source),
                 module_at<model::BatchNorm2dImpl>(modules, "bn1", source));
  const model::ResNetLayout layout = model::resnet_layout(o);
  for (size_t s = 0; s < layout.planes.size(); ++s) {
    for (int64_t b = 0; b < layout.blocks[s]; ++b) {
      const std::string block = "layer" + std::to_string(s + 1) + "." + std::to_string(b) + ".";
      for (const char* j : {"1", "2"}) {
        add_binary_conv(out, block + "conv" + j,
                        module_at<quant::QuantConv2dImpl>(modules, block + "conv" + j, source),
                        module_at<model::BatchNorm2dImpl>(modules, block + "bn" + j, source));
      }
      if (modules.contains(block + "downsample")) {
        add_float_conv(out, block + "downsample.0",
                       module_at<quant::QuantConv2dImpl>(modules, block + "downsample.0", source),
                       module_at<model::BatchNorm2dImpl>(modules, block + "downsample.1", source));
      }
    }
  }
  auto& fc = module_at<quant::QuantLinearImpl>(modules, "fc", source);
  out.floats["fc.weight"] = as_float(fc.quantized_weight());
  out.floats["fc.bias"] = as_float(fc.bias);
  return out;
}

}  // namespace ctmq::deploy
