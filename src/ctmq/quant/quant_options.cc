#include "ctmq/quant/quant_options.h"

#include "ctmq/common/error.h"

namespace ctmq::quant {

WeightQuantizer parse_weight_quantizer(const std::string& name) {
  return parse_enum(kWeightQuantizerNames, name, "weight quantizer");
}
ActivationQuantizer parse_activation_quantizer(const std::string& name) {
  return parse_enum(kActivationQuantizerNames, name, "activation quantizer");
}
std::string activation_quantizer_name(ActivationQuantizer kind) {
  return enum_name(kActivationQuantizerNames, kind);
}
Granularity parse_granularity(const std::string& name) {
  return parse_enum(kGranularityNames, name, "quantizer granularity");
}

}  // namespace ctmq::quant
