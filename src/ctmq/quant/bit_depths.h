// Bit depths of a stage: one number for weights, one for activations.
//
// 32 means full precision (no quantization), so one model definition serves
// every stage of the chain; valid quantized depths are 1..8. A BitDepths is
// valid by construction: BitDepths(weight, activation) throws ctmq::Error for
// any other depth, so code holding one need not check it again.
#pragma once

#include <string>

#include "ctmq/common/error.h"

namespace ctmq::quant {

constexpr int kFullPrecisionBits = 32;
constexpr int kMaxQuantizedBits = 8;

// True for 1..8 and 32: the one rule for a valid bit depth.
inline bool is_valid_bits(int bits) {
  return bits == kFullPrecisionBits || (bits >= 1 && bits <= kMaxQuantizedBits);
}

struct BitDepths {
  int weight = kFullPrecisionBits;
  int activation = kFullPrecisionBits;

  BitDepths() = default;  // full precision, 32/32
  // Throws ctmq::Error naming the invalid depth and the valid ones. Callers
  // that read the depths from a flag or a file add its name (check first with
  // is_valid_bits, or catch and rethrow). Set depths through this constructor
  // (bits = {w, a}), not field by field.
  BitDepths(int weight_bits, int activation_bits)
      : weight(weight_bits), activation(activation_bits) {
    CTMQ_CHECK(is_valid_bits(weight), "weight bit depth "
                                          << weight
                                          << " is not valid; use 1..8, or 32 for full precision");
    CTMQ_CHECK(is_valid_bits(activation),
               "activation bit depth " << activation
                                       << " is not valid; use 1..8, or 32 for full precision");
  }

  bool full_precision() const {
    return weight == kFullPrecisionBits && activation == kFullPrecisionBits;
  }
  // "fp" for full precision, otherwise "w4a4", "w1a2", ...
  std::string tag() const {
    if (full_precision()) return "fp";
    auto part = [](int bits) {
      return bits == kFullPrecisionBits ? std::string("32") : std::to_string(bits);
    };
    return "w" + part(weight) + "a" + part(activation);
  }
  bool operator==(const BitDepths& o) const {
    return weight == o.weight && activation == o.activation;
  }
  bool operator!=(const BitDepths& o) const { return !(*this == o); }
};

}  // namespace ctmq::quant
