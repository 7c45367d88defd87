#include "ctmq/deploy/state_dict_export.h"

#include <nlohmann/json.hpp>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/checksum.h"
#include "ctmq/common/error.h"
#include "ctmq/common/version.h"
#include "ctmq/deploy/torch_save.h"
#include "ctmq/quant/quant_conv.h"
#include "ctmq/quant/quant_linear.h"

namespace ctmq::deploy {
namespace {

using nlohmann::json;

std::string weight_quantizer_name(quant::WeightQuantizer q) {
  return q == quant::WeightQuantizer::kLsq ? "lsq" : "dorefa";
}

std::string granularity_name(quant::Granularity g) {
  return g == quant::Granularity::kPerChannel ? "per-channel" : "per-tensor";
}

// Every parameter and buffer, detached and contiguous, in module order.
std::vector<std::pair<std::string, torch::Tensor>> named_tensors(model::NetworkImpl& net) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : net.named_parameters())
    out.emplace_back(p.key(), p.value().detach().to(torch::kCPU).contiguous().clone());
  for (const auto& b : net.named_buffers())
    out.emplace_back(b.key(), b.value().detach().to(torch::kCPU).contiguous().clone());
  return out;
}

// One quantized layer's entry: kind, geometry, bits; throws for an LSQ input
// step that is still 0 at a depth that uses it.
json describe_layer(const std::string& name, torch::nn::Module& module,
                    const quant::QuantizedLayer& layer, const std::string& source) {
  const quant::BitDepths bits = layer.bit_depths();
  json j = {
      {"name", name},
      {"edge", layer.is_edge_layer()},
      {"weight_bits", bits.weight},
      {"activation_bits", layer.is_edge_layer() ? quant::kFullPrecisionBits : bits.activation}};
  if (auto* conv = dynamic_cast<quant::QuantConv2dImpl*>(&module)) {
    j["kind"] = "conv";
    j["in_channels"] = conv->options.in_channels();
    j["out_channels"] = conv->options.out_channels();
    j["kernel_size"] = conv->options.kernel_size();
    j["stride"] = conv->options.stride();
    j["padding"] = conv->options.padding();
    j["bias"] = conv->options.bias();
  } else if (auto* linear = dynamic_cast<quant::QuantLinearImpl*>(&module)) {
    j["kind"] = "linear";
    j["in_features"] = linear->options.in_features();
    j["out_features"] = linear->options.out_features();
    j["bias"] = linear->options.bias();
  } else {
    CTMQ_FAIL(source << ": layer " << name << " is a quantized layer of a kind the state-dict "
                     << "export does not describe");
  }
  const auto* step = module.named_parameters(/*recurse=*/false).find("input_step");
  const int a = j["activation_bits"].get<int>();
  if (step != nullptr && a >= 2 && a <= quant::kMaxQuantizedBits) {
    CTMQ_CHECK(step->item<float>() > 0,
               source << ": the LSQ input step of layer " << name
                      << " was never initialised (0); ctmq cannot evaluate this network either: "
                         "train at least one batch at these bit depths first");
  }
  return j;
}

}  // namespace

std::string state_dict_description_path(const std::string& output) { return output + ".json"; }

std::string encode_state_dict(model::NetworkImpl& net) {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
  for (const auto& [name, tensor] : named_tensors(net)) dict.insert(name, tensor);
  // No TorchScript type tags: torch.load(weights_only=True) reads it.
  return torch_save_untagged(c10::IValue(dict));
}

std::string describe_network(model::NetworkImpl& net, const std::string& state_dict_bytes,
                             const std::string& source) {
  const model::ModelOptions& o = net.options();
  CTMQ_CHECK(o.preprocessing.known(),
             source << ": the network records no input normalisation (a network file older than "
                       "format 3); re-save it with this ctmq (ctmq-eval) before exporting");
  json layers = json::array();
  for (const auto& item : net.named_modules("", /*include_self=*/false)) {
    if (const auto* layer = dynamic_cast<const quant::QuantizedLayer*>(item.value().get()))
      layers.push_back(describe_layer(item.key(), *item.value(), *layer, source));
  }
  json tensors = json::array();
  for (const auto& [name, tensor] : named_tensors(net)) {
    tensors.push_back({{"name", name},
                       {"shape", tensor.sizes().vec()},
                       {"dtype", std::string(c10::toString(tensor.scalar_type()))}});
  }
  const quant::BitDepths bits = net.bit_depths();
  const json j = {
      {"format", kStateDictFormat},
      {"version", kStateDictVersion},
      {"ctmq_version", CTMQ_VERSION},
      {"source", source},
      {"architecture", model::architecture_name(o.architecture)},
      {"width", o.width},
      {"num_classes", o.num_classes},
      {"in_channels", o.in_channels},
      {"block", model::block_name(o.block)},
      {"bits", {{"weight", bits.weight}, {"activation", bits.activation}, {"tag", bits.tag()}}},
      {"quantizers",
       {{"weight", weight_quantizer_name(o.quant.weight)},
        {"activation", quant::activation_quantizer_name(o.quant.activation)},
        {"weight_granularity", granularity_name(o.quant.weight_granularity)},
        {"edge_layer_bits", o.quant.edge_layer_bits}}},
      {"input",
       {{"pixel_scale", 255},
        {"mean", o.preprocessing.mean},
        {"std", o.preprocessing.std_dev},
        {"formula", "x = (pixel / 255 - mean[c]) / std[c]"}}},
      {"layers", layers},
      {"tensors", tensors},
      {"state_dict_bytes", state_dict_bytes.size()},
      {"state_dict_crc32", crc32_hex(crc32_of(state_dict_bytes.data(), state_dict_bytes.size()))}};
  return j.dump(1) + "\n";
}

size_t write_state_dict_export(model::NetworkImpl& net, const std::string& output,
                               const std::string& source) {
  const std::string bytes = encode_state_dict(net);
  const std::string description = describe_network(net, bytes, source);
  // What is written must read back: every tensor, equal, under its name.
  const c10::IValue back = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  CTMQ_CHECK(back.isGenericDict(), output << ": the state dict did not read back as a dict");
  const c10::impl::GenericDict dict = back.toGenericDict();
  const auto expected = named_tensors(net);
  CTMQ_CHECK(dict.size() == expected.size(), output << ": the state dict read back with "
                                                    << dict.size() << " tensors, not "
                                                    << expected.size());
  for (const auto& [name, tensor] : expected) {
    CTMQ_CHECK(dict.contains(name) && torch::equal(dict.at(name).toTensor(), tensor),
               output << ": tensor " << name << " did not read back equal");
  }
  write_file_atomically(state_dict_description_path(output), description);
  write_file_atomically(output, bytes);
  return bytes.size();
}

}  // namespace ctmq::deploy
