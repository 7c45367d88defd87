// Which quantizers a model uses. Chosen once, when the model is built; the
// bit depths themselves change per stage (see bit_depths.h).
#pragma once

#include <string>

#include "ctmq/common/enum_names.h"

namespace ctmq::quant {

// Weights at k >= 2. At k = 1 every kind hands over to the binary quantizer
// (alpha * sign(W), alpha = mean |W| per output channel), as method.md says.
enum class WeightQuantizer {
  kDoReFa,  // tanh-normalised uniform quantizer (default)
  kLsq,     // learned step size
};
inline constexpr EnumTable<WeightQuantizer, 2> kWeightQuantizerNames{{
    {WeightQuantizer::kDoReFa, "dorefa"},
    {WeightQuantizer::kLsq, "lsq"},
}};

enum class ActivationQuantizer {
  kSigned,    // 2 q_k((clip(x,-1,1)+1)/2) - 1; sign(x) with ApproxSign at k = 1 (default)
  kUnsigned,  // DoReFa q_k(clip(x, 0, 1))
  kLsq,       // learned step size; the signed binary quantizer at k = 1
  kPact,      // signed with a learned range alpha per layer (PACT): alpha * signed(clip(x/alpha))
};
inline constexpr EnumTable<ActivationQuantizer, 4> kActivationQuantizerNames{{
    {ActivationQuantizer::kSigned, "signed"},
    {ActivationQuantizer::kUnsigned, "unsigned"},
    {ActivationQuantizer::kLsq, "lsq"},
    {ActivationQuantizer::kPact, "pact"},
}};

enum class Granularity { kPerTensor, kPerChannel };
inline constexpr EnumTable<Granularity, 2> kGranularityNames{{
    {Granularity::kPerTensor, "per-tensor"},
    {Granularity::kPerChannel, "per-channel"},
}};

struct QuantOptions {
  WeightQuantizer weight = WeightQuantizer::kDoReFa;
  ActivationQuantizer activation = ActivationQuantizer::kSigned;
  Granularity weight_granularity = Granularity::kPerTensor;  // DoReFa/LSQ scale
  // Bits of the first convolution, the last linear layer and 1x1 downsample
  // shortcuts: 32 keeps them full precision (default); 8 quantizes them to 8 bits.
  int edge_layer_bits = 32;
  // At full-precision activations, a non-edge layer's input still passes the
  // activation quantizer's limit (activation_limit in quantizers.h: hardtanh
  // for kSigned), so the full-precision network is the same graph as every
  // quantized one. The model sets it per block (true in model::Block::kBiReal);
  // false, the default, keeps a lone layer at 32/32 an ordinary conv/linear.
  bool full_precision_limit = false;
};

// Parsers for option values ("dorefa"|"lsq", "signed"|"unsigned"|"lsq"|"pact",
// "per-tensor"|"per-channel"); throw ctmq::Error listing the accepted values.
WeightQuantizer parse_weight_quantizer(const std::string& name);
ActivationQuantizer parse_activation_quantizer(const std::string& name);
std::string activation_quantizer_name(ActivationQuantizer kind);
Granularity parse_granularity(const std::string& name);

}  // namespace ctmq::quant
