// A binary 2-D convolution on bit-packed operands: XNOR (signed inputs) or
// AND (unsigned inputs) + popcount, for inference of W1A1 layers
// (docs/packed-format.md; Rastegari et al. 2016, "XNOR-Net", eq. 2-3).
//
// Weights are signs, +1 for w >= 0 and -1 for w < 0 (the binary weight
// quantizer of quant/quantizers.h without its scale). Inputs are one bit per
// value, taken from float activations:
//   InputCoding::kSigned    a = +1 for x >= 0 (-0.0 included), -1 for x < 0:
//                           quant::signed_activation at k = 1 (also LSQ and PACT
//                           at k = 1, whose alpha the caller folds into `scale`)
//   InputCoding::kUnsigned  a = 1 for x > 0.5, 0 otherwise: round(clip(x, 0, 1))
//                           with round-half-to-even, quant::unsigned_activation at k = 1
// Zero padding contributes 0 to the sum, as in the float convolution of the
// quantized values (not +1 or -1).
//
// Filter bits (the order of the packed file's "weight_bits", fixed by the
// format): for output channel o, bit j = (ky * kernel + kx) * in_channels + c
// of the filter lives in word o * words_per_filter() + j / 64 at bit j % 64
// (least significant first); bit value 1 means -1 (w < 0); the bits past
// in_channels * kernel^2 in a filter's last word are 0.
//
// Result, for every image n, output channel o and output position (y, x):
//   dot = sum over the taps (c, ky, kx) inside the input of a(n, c, y*stride -
//         padding + ky, x*stride - padding + kx) * w(o, c, ky, kx)   (an exact integer)
//   out[n][o][y][x] = scale[o] * dot + bias[o]                      (float)
// so a BatchNorm and the weight's per-channel mean |W| fold into scale and bias.
//
// Threads: forward() runs on the calling thread only; callers split images
// over threads. Const methods may be called concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ctmq::deploy {

enum class InputCoding { kSigned, kUnsigned };

struct BinaryConvGeometry {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t kernel = 3;  // square kernels
  int64_t stride = 1;
  int64_t padding = 0;
};

// Which code path computes the popcounts. kAuto: AVX2 when the CPU has it
// (checked at run time), else portable; kAvx2 on a CPU without AVX2 throws.
enum class KernelPath { kAuto, kPortable, kAvx2 };

// The name of the path kAuto takes on this CPU: "avx2" or "portable".
std::string auto_kernel_path_name();

class PackedBinaryConv {
 public:
  // Packs the signs of float weights [out_channels, in_channels, kernel, kernel]
  // (contiguous). Throws ctmq::Error when the geometry is not positive
  // (padding may be 0).
  static PackedBinaryConv from_weights(const float* weight, const BinaryConvGeometry& geometry);
  // From filter words in the order above (a packed file's "weight_bits"); throws
  // ctmq::Error when the count is not out_channels * words_per_filter or a
  // bit past the filter's length is set.
  PackedBinaryConv(const BinaryConvGeometry& geometry, std::vector<uint64_t> words);

  const BinaryConvGeometry& geometry() const { return geometry_; }
  // ceil(in_channels * kernel^2 / 64)
  int64_t words_per_filter() const;
  // The filter words in the file order above.
  const std::vector<uint64_t>& words() const { return words_; }

  int64_t output_size(int64_t input_size) const {
    return (input_size + 2 * geometry_.padding - geometry_.kernel) / geometry_.stride + 1;
  }

  // input: float [batch, in_channels, height, width] contiguous (NCHW);
  // scale, bias: float [out_channels]; output: float
  // [batch, out_channels, output_size(height), output_size(width)] contiguous.
  // Throws ctmq::Error when an output size would be < 1.
  void forward(const float* input, int64_t batch, int64_t height, int64_t width, InputCoding coding,
               const float* scale, const float* bias, float* output,
               KernelPath path = KernelPath::kAuto) const;

 private:
  BinaryConvGeometry geometry_;
  std::vector<uint64_t> words_;
  // Re-laid-out copies of the filters, built once in the constructor
  // (binary_conv.cc describes the layouts): the file order with the filter
  // count padded for the portable kernel's tiles, and the AVX2 kernel's
  // lane layout (nibble-split words, four filters interleaved).
  std::vector<uint64_t> portable_filters_;
  std::vector<uint64_t> nibble_filters_;
  // sum over c of w(o, c, ky, kx) at [o * kernel^2 + ky * kernel + kx]: what
  // a padded tap, coded +1 by the signed kernel, wrongly adds to the dot.
  std::vector<int32_t> tap_sums_;
};

}  // namespace ctmq::deploy
