#include "ctmq/model/network.h"

#include "ctmq/common/error.h"
#include "ctmq/model/resnet.h"
#include "ctmq/quant/layer_quantizer.h"

namespace ctmq::model {

Architecture parse_architecture(const std::string& name) {
  return parse_enum(kArchitectureNames, name, "architecture");
}
std::string architecture_name(Architecture arch) { return enum_name(kArchitectureNames, arch); }

Block parse_block(const std::string& name) { return parse_enum(kBlockNames, name, "block"); }
std::string block_name(Block block) { return enum_name(kBlockNames, block); }

void NetworkImpl::set_bit_depths(quant::BitDepths bits) {
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

void NetworkImpl::set_memory_format(torch::MemoryFormat format) {
  CTMQ_CHECK(
      format == torch::MemoryFormat::ChannelsLast || format == torch::MemoryFormat::Contiguous,
      "memory format " << format
                       << " is not supported; use one of: " << enum_choices(kMemoryFormatNames));
  memory_format_ = format;
}

std::shared_ptr<NetworkImpl> make_network(const ModelOptions& options) {
  return std::make_shared<ResNetImpl>(options);
}

}  // namespace ctmq::model
