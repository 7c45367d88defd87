// Internal to the binary convolution (binary_conv.cc, binary_pack.cc,
// binary_kernel_portable.cc, binary_kernel_avx2.cc): the per-call geometry
// (Plan), the integer-dot epilogue shared by both kernels (Epilogue), the
// constants that size tiles, chunks and passes, and the AVX2 path's lane
// layout. Not part of the public API; see binary_conv.cc for the pipeline
// (pack, gather, GEMM, epilogue) and binary_conv.h for the contract.
#pragma once

#include <cstdint>

#include "ctmq/deploy/binary_conv.h"

#if defined(__x86_64__) || defined(__i386__)
#define CTMQ_BINARY_CONV_X86 1
#define CTMQ_TARGET_AVX2 __attribute__((target("avx2,popcnt,bmi2")))
#endif

namespace ctmq::deploy::detail {

constexpr uint64_t kNibbleMask = 0x0f0f0f0f0f0f0f0fULL;
constexpr int64_t kTileRows = 4;          // output positions per portable tile
constexpr int64_t kPortableTileCols = 2;  // filters per portable tile
// Filters per block so that a block's filters stay in L2 while all row tiles
// of a chunk pass over them.
constexpr int64_t kFilterBlockBytes = 128 * 1024;
// Output positions per gathered chunk: rows of a chunk fit in L1/L2.
constexpr int64_t kChunkBytes = 48 * 1024;
// Bytes of packed input (both nibble images) per pass of the AVX2 byte
// path: the images of a pass stay in L2 while their rows are gathered.
constexpr int64_t kPassBytes = 256 * 1024;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// ORs the `nbits` bits of `src` (ceil(nbits / 64) words, zero above nbits)
// into `dst` starting at bit `offset`; dst must have a word to spare past
// the last bit written.
inline void append_bits(uint64_t* dst, int64_t offset, const uint64_t* src, int64_t nbits) {
  const int64_t nwords = ceil_div(nbits, 64);
  const int shift = static_cast<int>(offset & 63);
  uint64_t* d = dst + (offset >> 6);
  if (shift == 0) {
    for (int64_t i = 0; i < nwords; ++i) d[i] |= src[i];
    return;
  }
  for (int64_t i = 0; i < nwords; ++i) {
    d[i] |= src[i] << shift;
    d[i + 1] |= src[i] >> (64 - shift);
  }
}

// Per-call geometry of one forward().
struct Plan {
  int64_t channels, kernel, stride, padding;
  int64_t height, width, out_h, out_w, npos;
  int64_t pixel_words;   // words per pixel in the bit image
  int64_t bits;          // K
  int64_t row_words;     // words of a gathered row in its layout
  int64_t gather_words;  // words of the word-layout scratch row (a spare word included)
  bool count_rows;       // gather also counts each row's bits (unsigned coding)
};

// The epilogue: integer dots of one tile from its popcounts, then
// out[o][pos] = scale[o] * dot + bias[o].
struct Epilogue {
  InputCoding coding;
  int64_t bits, out_channels, npos;
  const float* scale;
  const float* bias;
  float* out;                // the first image's [out_channels][npos]
  int64_t total;             // positions of the images from `out` on (AVX2 byte path: a pass)
  const int32_t* pos_class;  // [npos] border class (signed coding)
  const int32_t* corr;       // [class][out_channels] padded taps' weight sum
  const int32_t* rowpop;     // popcount of each row of the chunk (unsigned coding)

  // counts[c * kTileRows + r] for filter o0 + c, position p0 + r (row r0 + r
  // of the chunk).
  template <int64_t C>
  inline __attribute__((always_inline)) void store(int64_t o0, int64_t p0, int64_t r0,
                                                   const int32_t* counts) const {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t o = o0 + c;
      if (o >= out_channels) break;
      const float sc = scale[o], bi = bias[o];
      float* dst = out + o * npos;
      for (int64_t r = 0; r < kTileRows; ++r) {
        const int64_t pos = p0 + r;
        if (pos >= npos) break;
        const int32_t n = counts[c * kTileRows + r];
        const int32_t dot =
            coding == InputCoding::kSigned
                ? static_cast<int32_t>(bits) - 2 * n - corr[pos_class[pos] * out_channels + o]
                : 2 * n - rowpop[r0 + r];
        dst[pos] = sc * static_cast<float>(dot) + bi;
      }
    }
  }
};

// The AVX2 path's layouts ("lane layout"). A row (the K bits of one output
// position) or a filter has W = words_per_filter() words in the word layout;
// each word w is split into its nibbles, lo = w & M and hi = (w >> 4) & M
// (M = 0x0f0f...), so that every byte holds 4 bits and vpshufb on a 16-entry
// table counts them. XOR and AND-NOT commute with the split, so the counts
// are those of the word layout. Four rows (or four filters) form a group,
// stored [w][half][lane]: the 256-bit vector at group + (2 w + half) * 4
// words holds nibble word `half` of word w of the group's four rows. The
// kernel XORs such a vector of four rows with one filter's word broadcast
// to all lanes, so each 64-bit lane keeps the count of one (row, filter)
// pair: no horizontal reduction per tile, one vpsadbw at the end, and the
// four lanes are four consecutive output positions, stored as one vector.
// K is padded to 64 bits only (the previous kernel padded to 128 or 256).
constexpr int64_t kLanes = 4;                // positions per vector (a 64-bit lane each)
constexpr int64_t kGroupWords = 2 * kLanes;  // words per (group, word w): two nibble halves
// Byte counters gain at most 4 + 4 per word, so a block of 31 words cannot
// overflow them; longer rows are summed block by block.
constexpr int64_t kMaxBlockWords = 31;

}  // namespace ctmq::deploy::detail
