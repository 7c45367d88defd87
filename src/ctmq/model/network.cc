#include "ctmq/model/network.h"

#include "ctmq/common/error.h"
#include "ctmq/model/resnet.h"
#include "ctmq/quant/layer_quantizer.h"

namespace ctmq::model {

Architecture parse_architecture(const std::string& name) {
  if (name == "resnet18") return Architecture::kResNet18;
  if (name == "resnet20") return Architecture::kResNet20;
  if (name == "small-resnet") return Architecture::kSmallResNet;
  CTMQ_FAIL("architecture '" << name
                             << "' is not known; use one of: resnet18, resnet20, "
                                "small-resnet");
}

std::string architecture_name(Architecture arch) {
  switch (arch) {
    case Architecture::kResNet18:
      return "resnet18";
    case Architecture::kResNet20:
      return "resnet20";
    case Architecture::kSmallResNet:
      return "small-resnet";
  }
  CTMQ_ASSERT(false);
  return {};
}

Block parse_block(const std::string& name) {
  if (name == "bi-real") return Block::kBiReal;
  if (name == "torchvision") return Block::kTorchvision;
  CTMQ_FAIL("block '" << name << "' is not known; use one of: bi-real, torchvision");
}

std::string block_name(Block block) {
  return block == Block::kTorchvision ? "torchvision" : "bi-real";
}

void NetworkImpl::set_bit_depths(quant::BitDepths bits) {
  CTMQ_CHECK(quant::is_valid_bits(bits.weight) && quant::is_valid_bits(bits.activation),
             "bit depths " << bits.tag()
                           << " are not valid; use 1..8 or 32 for weights and "
                              "activations");
  // Edge layers: edge_layer_bits for the weight once anything is quantized,
  // inputs never quantized; everything full precision at fp.
  const quant::BitDepths edge =
      bits.full_precision()
          ? quant::BitDepths{}
          : quant::BitDepths{options_.quant.edge_layer_bits, quant::kFullPrecisionBits};
  for (const auto& m : modules(/*include_self=*/false)) {
    if (auto* layer = dynamic_cast<quant::QuantizedLayer*>(m.get())) {
      layer->set_bit_depths(layer->is_edge_layer() ? edge : bits);
    }
  }
  bits_ = bits;
}

std::shared_ptr<NetworkImpl> make_network(const ModelOptions& options) {
  return std::make_shared<ResNetImpl>(options);
}

}  // namespace ctmq::model
