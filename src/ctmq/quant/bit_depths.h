// Bit depths of a stage: one number for weights, one for activations.
//
// 32 means full precision (no quantization), so one model definition serves
// every stage of the chain; valid quantized depths are 1..8.
#pragma once

#include <string>

namespace ctmq::quant {

constexpr int kFullPrecisionBits = 32;
constexpr int kMaxQuantizedBits = 8;

struct BitDepths {
  int weight = kFullPrecisionBits;
  int activation = kFullPrecisionBits;

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

// True for 1..8 and 32.
inline bool is_valid_bits(int bits) {
  return bits == kFullPrecisionBits || (bits >= 1 && bits <= kMaxQuantizedBits);
}

}  // namespace ctmq::quant
