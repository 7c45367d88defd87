#include "ctmq/quant/quant_options.h"

#include "ctmq/common/error.h"

namespace ctmq::quant {

WeightQuantizer parse_weight_quantizer(const std::string& name) {
  if (name == "dorefa") return WeightQuantizer::kDoReFa;
  if (name == "lsq") return WeightQuantizer::kLsq;
  CTMQ_FAIL("weight quantizer '" << name << "' is not known; use one of: dorefa, lsq");
}

ActivationQuantizer parse_activation_quantizer(const std::string& name) {
  if (name == "signed") return ActivationQuantizer::kSigned;
  if (name == "unsigned") return ActivationQuantizer::kUnsigned;
  if (name == "lsq") return ActivationQuantizer::kLsq;
  if (name == "pact") return ActivationQuantizer::kPact;
  CTMQ_FAIL("activation quantizer '" << name
                                     << "' is not known; use one of: signed, unsigned, lsq, pact");
}

std::string activation_quantizer_name(ActivationQuantizer kind) {
  switch (kind) {
    case ActivationQuantizer::kSigned:
      return "signed";
    case ActivationQuantizer::kUnsigned:
      return "unsigned";
    case ActivationQuantizer::kLsq:
      return "lsq";
    case ActivationQuantizer::kPact:
      return "pact";
  }
  CTMQ_ASSERT(false);
  return {};
}

Granularity parse_granularity(const std::string& name) {
  if (name == "per-tensor") return Granularity::kPerTensor;
  if (name == "per-channel") return Granularity::kPerChannel;
  CTMQ_FAIL("quantizer granularity '" << name
                                      << "' is not known; use one of: per-tensor, per-channel");
}

}  // namespace ctmq::quant
