// Internal to the binary convolution: steps 1 and 2 of forward() (see
// binary_conv.cc), i.e. packing a float NCHW image into sign bits and
// gathering each output position's receptive field into a row of
// K = in_channels * kernel^2 bits (im2col on bits). Called by
// PackedBinaryConv::forward() only.
//   Portable path: bit image [height * width][pixel_words] words, rows in
//     the word layout [nrows][row_words].
//   AVX2 path: byte image (pixel_bytes per pixel), rows in the lane layout
//     (binary_conv_layout.h); in_channels % 8 == 0 gathers bytes from a
//     zero-bordered nibble image (PaddedImage), other in_channels shift
//     bits into a word-layout row first.
#pragma once

#include <cstdint>

#include "ctmq/deploy/binary_conv_layout.h"

namespace ctmq::deploy::detail {

// Pack (portable): bit image [height * width][pixel_words], bit 1 where the
// input codes -1 (signed: x < 0, so -0.0 is +1) or 1 (unsigned: x > 0.5).
void pack_image_portable(const float* x, const Plan& p, InputCoding coding, uint64_t* bits);

// gather (portable, word layout): rows [nrows][row_words] for output
// positions [p0, p0 + nrows) (positions past npos are zero rows); the taps
// are copied (in_channels % 64 == 0) or shifted into place; rowpop[i] =
// popcount of row i (used by the unsigned coding).
void gather_portable(const uint64_t* bits, const Plan& p, int64_t p0, int64_t nrows, uint64_t* rows,
                     int32_t* rowpop);

// Splits `bits` (n words) into its nibble halves: lo[i] = bits[i] & M,
// hi[i] = (bits[i] >> 4) & M. The split is per byte, so byte b of lo and hi
// comes from byte b of bits.
void split_nibbles(const uint64_t* bits, int64_t n, uint64_t* lo, uint64_t* hi);

#ifdef CTMQ_BINARY_CONV_X86
// Pack (AVX2): as pack_image_portable, into `pixel_bytes` bytes per pixel
// (x86 is little-endian, so pixel_words * 8 gives the words of
// pack_image_portable, and in_channels / 8 a compact byte image). 16
// channels x 8 pixels at a time: each channel's comparison (a 32-bit mask
// per pixel) is ANDed with its bit and ORed in, so each 32-bit lane ends up
// holding its pixel's 16 channel bits; one pack to 16 bits gives the 8
// pixels' bytes in image order (a single 16-byte store when a pixel has 2
// bytes). This replaced movemask + an 8x8 bit transpose per 8 channels.
void pack_image_avx2(const float* x, const Plan& p, InputCoding coding, uint8_t* bytes,
                     int64_t pixel_bytes);

// The input of the byte gather (in_channels % 8 == 0): the bit image's two
// nibble halves, tap_bytes = in_channels / 8 bytes per pixel, with a border
// of `padding` zero pixels, so every output position reads inside it; each
// buffer has 8 readable bytes past its end.
struct PaddedImage {
  const uint8_t* lo;
  const uint8_t* hi;
  int64_t width;  // input width + 2 * padding
  int64_t tap_bytes;
  int64_t image_bytes;  // bytes from one padded image to the next
};

// A gather of the lane layout for in_channels % 8 == 0 (see
// gather_lanes_bytes in binary_pack.cc): rows [nrows] for positions
// [p0, p0 + nrows) of a pass of `total` positions; rowpop[i] = popcount of
// row i.
using ByteGather = void (*)(const PaddedImage& img, const Plan& p, int64_t total, int64_t p0,
                            int64_t nrows, uint64_t* rows, int32_t* rowpop);

// The byte gather for this kernel size and tap_bytes = in_channels / 8:
// specialised at compile time for 3 x 3 kernels with 8, 16, 32, 64 or 128
// channels, else the general one.
ByteGather select_byte_gather(int64_t kernel, int64_t tap_bytes);

// gather (lane layout), other in_channels: the taps are shifted into a
// word-layout row (append_bits, bounds-checked against the unpadded bit
// image of pixel_words words per pixel), which is then split and scattered.
// scratch: 3 * (row_words + 1) words.
void gather_lanes_shift(const uint64_t* bits, const Plan& p, int64_t p0, int64_t nrows,
                        uint64_t* rows, int32_t* rowpop, uint64_t* scratch);
#endif  // CTMQ_BINARY_CONV_X86

}  // namespace ctmq::deploy::detail
