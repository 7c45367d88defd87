// Internal to the binary convolution: the AVX2 GEMM (step 3 and the
// epilogue of forward(), see binary_conv.cc) on rows and filters in the lane
// layout (binary_conv_layout.h), vpshufb nibble popcounts in register tiles
// of 2 x 4 or 3 x 2 (row vectors x filters). Called by
// PackedBinaryConv::forward() when the AVX2 path runs. The functions carry
// target attributes, so the library builds with default flags; callers
// check cpu_has_avx2() first.
#pragma once

#include <cstdint>

#include "ctmq/deploy/binary_conv_layout.h"

#ifdef CTMQ_BINARY_CONV_X86
namespace ctmq::deploy::detail {

// AVX2 tile: R groups of four rows (`group_words` words apart) x C
// consecutive filters of the lane layout (starting at `filters`, which
// points at a filter's lane; a filter group holds 4, so C is 2 or 4 and a
// tile does not straddle groups), words [w0, w1), w1 - w0 <= kMaxBlockWords.
// sums[r * C + c] holds, per 64-bit lane i, the popcount for row 4 r + i and
// filter c.
// Registers (2 x 4): 8 byte accumulators, the table, a filter's two
// broadcast halves and two temporaries; the row vectors are memory operands
// (they are in L1), so the loop is filter-outer within a word. GCC 12 keeps
// more broadcasts live than that and spills three of the 2 x 4 tile's
// accumulators (loop-carried loads and stores in the inner loop); the six of
// a 3 x 2 tile ("wide") stay in registers. Wide tiles measured faster for
// rows of 8 to kMaxBlockWords words (64 to 224 channels at kernel 3), 2 x 4
// for shorter rows (16 to 32 channels, where the epilogue weighs more) and
// for long rows (summed block by block).
constexpr int64_t kTileVectors = 2;
constexpr int64_t kTileFilters = 4;
constexpr int64_t kWideVectors = 3;
constexpr int64_t kWideFilters = 2;

inline bool wide_tiles(int64_t words) { return words >= 8 && words <= kMaxBlockWords; }

// Per-call epilogue data of the AVX2 path: scale and bias with each
// filter's value repeated kLanes times, so that the vector for filters
// (o, o + 1) x four positions is one load.
struct LaneEpilogue {
  const Epilogue* ep;
  const float* scale4;  // [padded filters * kLanes]
  const float* bias4;
};

// rows: the chunk's nrows rows (positions [p0, p0 + nrows) of the pass) in
// the lane layout, words = words_per_filter(); filters: the lane layout of
// all filters (PackedBinaryConv's nibble_filters_).
// filter_tiles: ceil(out_channels / C) for the tile shape that
// wide_tiles(words) picks.
void gemm_avx2(const uint64_t* rows, int64_t nrows, int64_t p0, const uint64_t* filters,
               int64_t filter_tiles, int64_t words, const LaneEpilogue& le);

}  // namespace ctmq::deploy::detail
#endif  // CTMQ_BINARY_CONV_X86
