// Binary convolution by XNOR/AND + popcount on bit-packed operands
// (Rastegari et al. 2016, "XNOR-Net"; the im2col + popcount-GEMM structure
// with register-blocked tiles follows daBNN, Zhang et al. 2019).
//
// forward() per image:
//   1. pack: the input becomes a bit image, per pixel its channels' bits
//      (ceil(in_channels / 64) words per pixel).
//   2. gather: for a chunk of output positions, each position's receptive
//      field becomes a row of K = in_channels * kernel^2 bits in the filters'
//      bit order (im2col on bits); padded taps are bit 0.
//   3. GEMM: popcount(row XOR filter) (signed) or popcount(row AND NOT filter)
//      (unsigned) for tiles of 4 rows x C filters held in registers.
//   4. epilogue: the integer dot, then scale * dot + bias, into NCHW.
//
// Layouts. Word layout (portable kernel): a row or filter is
// words_per_filter() words in the file's bit order. Nibble layout (AVX2
// kernel): each word w becomes the two words w & M, (w >> 4) & M with
// M = 0x0f0f...; the string is zero-padded to steps of 128 input bits (one
// 256-bit vector per step). Every byte then holds 4 bits, so vpshufb on a
// 16-entry table counts them (the
// Mula popcount without the per-product nibble split, since XOR and AND-NOT
// commute with the split). Rows and filters use the same permutation, so the
// popcounts are those of the word layout.
//
// Signed dots: padded taps are bit 0 (+1), so K - 2 * popcount(a ^ w) counts
// them; the sum of w over the padded taps is subtracted again. That sum
// depends only on which taps are padded, i.e. on the position's border
// class, and is tabulated per call (classes x out_channels).
// Unsigned dots: sum a * w = popcount(a & ~w) - popcount(a & w)
//   = 2 * popcount(a & ~w) - popcount(a); padded taps are 0 and need nothing.
#include "ctmq/deploy/binary_conv.h"

#include <algorithm>
#include <cstring>

#include "ctmq/common/error.h"

#if defined(__x86_64__) || defined(__i386__)
#define CTMQ_BINARY_CONV_X86 1
#include <immintrin.h>
#endif

namespace ctmq::deploy {
namespace {

constexpr uint64_t kNibbleMask = 0x0f0f0f0f0f0f0f0fULL;
constexpr int64_t kTileRows = 4;          // output positions per tile (both kernels)
constexpr int64_t kPortableTileCols = 2;  // filters per portable tile
constexpr int64_t kAvx2TileCols = 1;      // filters per AVX2 tile (see tile_nibbles)
// Filters per block so that a block's filters stay in L2 while all row tiles
// of a chunk pass over them.
constexpr int64_t kFilterBlockBytes = 128 * 1024;
// Output positions per gathered chunk: rows of a chunk fit in L1/L2.
constexpr int64_t kChunkBytes = 48 * 1024;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

bool cpu_has_avx2() {
#ifdef CTMQ_BINARY_CONV_X86
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt") &&
           __builtin_cpu_supports("bmi2");
  }();
  return has;
#else
  return false;
#endif
}

// Converts `n` words of the word layout into the nibble layout (2 * n words).
void to_nibbles(const uint64_t* words, int64_t n, uint64_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    out[2 * i] = words[i] & kNibbleMask;
    out[2 * i + 1] = (words[i] >> 4) & kNibbleMask;
  }
}

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

// Pack (portable): bit image [height * width][pixel_words], bit 1 where the
// input codes -1 (signed: x < 0, so -0.0 is +1) or 1 (unsigned: x > 0.5).
void pack_image_portable(const float* x, const Plan& p, InputCoding coding, uint64_t* bits) {
  const int64_t hw = p.height * p.width;
  std::fill(bits, bits + hw * p.pixel_words, 0);
  for (int64_t c = 0; c < p.channels; ++c) {
    const float* xc = x + c * hw;
    const uint64_t bit = uint64_t{1} << (c & 63);
    uint64_t* b = bits + (c >> 6);
    for (int64_t i = 0; i < hw; ++i) {
      const bool set = coding == InputCoding::kSigned ? xc[i] < 0.0f : xc[i] > 0.5f;
      if (set) b[i * p.pixel_words] |= bit;
    }
  }
}

// gather: rows [nrows][row_words] (layout per kNibble) for output positions
// [p0, p0 + nrows) (positions past npos are zero rows); rowpop[i] =
// popcount of row i (used by the unsigned coding).
template <bool kNibble>
inline __attribute__((always_inline)) void gather_rows(const uint64_t* bits, const Plan& p,
                                                       int64_t p0, int64_t nrows, uint64_t* rows,
                                                       int32_t* rowpop, uint64_t* scratch) {
  const int64_t k = p.kernel;
  const bool aligned = p.channels % 64 == 0;
  for (int64_t i = 0; i < nrows; ++i) {
    uint64_t* row = rows + i * p.row_words;
    const int64_t pos = p0 + i;
    uint64_t* dst = kNibble ? scratch : row;
    std::fill(dst, dst + p.gather_words, 0);
    if (pos < p.npos) {
      const int64_t iy0 = (pos / p.out_w) * p.stride - p.padding;
      const int64_t ix0 = (pos % p.out_w) * p.stride - p.padding;
      for (int64_t ky = 0; ky < k; ++ky) {
        const int64_t iy = iy0 + ky;
        if (iy < 0 || iy >= p.height) continue;
        for (int64_t kx = 0; kx < k; ++kx) {
          const int64_t ix = ix0 + kx;
          if (ix < 0 || ix >= p.width) continue;
          const uint64_t* src = bits + (iy * p.width + ix) * p.pixel_words;
          const int64_t offset = (ky * k + kx) * p.channels;
          if (aligned) {
            std::memcpy(dst + offset / 64, src, p.pixel_words * sizeof(uint64_t));
          } else {
            append_bits(dst, offset, src, p.channels);
          }
        }
      }
    }
    if (p.count_rows) {
      int32_t count = 0;
      for (int64_t w = 0; w < p.gather_words; ++w) count += __builtin_popcountll(dst[w]);
      rowpop[i] = count;
    }
    if (kNibble) to_nibbles(scratch, p.row_words / 2, row);
  }
}

// gather (nibble layout, in_channels a multiple of 64): every tap is a copy
// of whole words of the bit image already in the nibble layout
// (`nibble_bits`, 2 * pixel_words words per pixel); no per-row conversion.
inline __attribute__((always_inline)) void gather_rows_aligned_nibbles(const uint64_t* nibble_bits,
                                                                       const Plan& p, int64_t p0,
                                                                       int64_t nrows,
                                                                       uint64_t* rows,
                                                                       int32_t* rowpop) {
  const int64_t k = p.kernel;
  const int64_t tap_words = 2 * p.pixel_words;
  const int64_t used = k * k * tap_words;
  for (int64_t i = 0; i < nrows; ++i) {
    uint64_t* row = rows + i * p.row_words;
    const int64_t pos = p0 + i;
    std::fill(row + used, row + p.row_words, 0);
    if (pos >= p.npos) {
      std::fill(row, row + used, 0);
    } else {
      const int64_t iy0 = (pos / p.out_w) * p.stride - p.padding;
      const int64_t ix0 = (pos % p.out_w) * p.stride - p.padding;
      for (int64_t ky = 0; ky < k; ++ky) {
        const int64_t iy = iy0 + ky;
        for (int64_t kx = 0; kx < k; ++kx) {
          const int64_t ix = ix0 + kx;
          uint64_t* dst = row + (ky * k + kx) * tap_words;
          if (iy < 0 || iy >= p.height || ix < 0 || ix >= p.width) {
            std::fill(dst, dst + tap_words, 0);
          } else {
            std::memcpy(dst, nibble_bits + (iy * p.width + ix) * tap_words,
                        tap_words * sizeof(uint64_t));
          }
        }
      }
    }
    if (p.count_rows) {
      int32_t count = 0;
      for (int64_t w = 0; w < p.row_words; ++w) count += __builtin_popcountll(row[w]);
      rowpop[i] = count;
    }
  }
}

// The epilogue: integer dots of one tile from its popcounts, then
// out[o][pos] = scale[o] * dot + bias[o].
struct Epilogue {
  InputCoding coding;
  int64_t bits, out_channels, npos;
  const float* scale;
  const float* bias;
  float* out;                // this image's [out_channels][npos]
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

// Portable GEMM tile: popcounts of kTileRows rows (`row_stride` words apart)
// x C filters (contiguous), word layout, `words` words each.
template <int64_t C, bool kAndNot>
inline __attribute__((always_inline)) void tile_words(const uint64_t* rows, int64_t row_stride,
                                                      const uint64_t* filters, int64_t words,
                                                      int32_t* counts) {
  uint64_t acc[kTileRows][C] = {};
  for (int64_t k = 0; k < words; ++k) {
    for (int64_t r = 0; r < kTileRows; ++r) {
      const uint64_t a = rows[r * row_stride + k];
      for (int64_t c = 0; c < C; ++c) {
        const uint64_t w = filters[c * words + k];
        acc[r][c] += __builtin_popcountll(kAndNot ? a & ~w : a ^ w);
      }
    }
  }
  for (int64_t r = 0; r < kTileRows; ++r)
    for (int64_t c = 0; c < C; ++c) counts[c * kTileRows + r] = static_cast<int32_t>(acc[r][c]);
}

// GEMM over one chunk of gathered rows and all filters: filters in blocks
// that stay in cache, within a block every row tile against every filter
// tile, each tile's dots straight to the output.
template <int64_t C, bool kAndNot, typename Tile>
inline __attribute__((always_inline)) void gemm_chunk(const uint64_t* rows, int64_t nrows,
                                                      int64_t p0, int64_t row_stride,
                                                      const uint64_t* filters,
                                                      int64_t padded_filters, int64_t filter_stride,
                                                      const Epilogue& ep, Tile tile) {
  const int64_t block = std::max<int64_t>(C, kFilterBlockBytes / (filter_stride * 8) / C * C);
  for (int64_t f0 = 0; f0 < padded_filters; f0 += block) {
    const int64_t f1 = std::min(padded_filters, f0 + block);
    for (int64_t r0 = 0; r0 < nrows; r0 += kTileRows) {
      for (int64_t o = f0; o < f1; o += C) {
        int32_t counts[C * kTileRows];
        tile(rows + r0 * row_stride, filters + o * filter_stride, counts);
        ep.store<C>(o, p0 + r0, r0, counts);
      }
    }
  }
}

// Rows are `words` + 1 words apart (the gather's spare word).
void gemm_portable(const uint64_t* rows, int64_t nrows, int64_t p0, const uint64_t* filters,
                   int64_t padded_filters, int64_t words, const Epilogue& ep) {
  constexpr int64_t C = kPortableTileCols;
  const int64_t stride = words + 1;
  if (ep.coding == InputCoding::kSigned) {
    gemm_chunk<C, false>(rows, nrows, p0, stride, filters, padded_filters, words, ep,
                         [=](const uint64_t* r, const uint64_t* f, int32_t* n) {
                           tile_words<C, false>(r, stride, f, words, n);
                         });
  } else {
    gemm_chunk<C, true>(rows, nrows, p0, stride, filters, padded_filters, words, ep,
                        [=](const uint64_t* r, const uint64_t* f, int32_t* n) {
                          tile_words<C, true>(r, stride, f, words, n);
                        });
  }
}

void gather_portable(const uint64_t* bits, const Plan& p, int64_t p0, int64_t nrows, uint64_t* rows,
                     int32_t* rowpop, uint64_t* scratch) {
  gather_rows<false>(bits, p, p0, nrows, rows, rowpop, scratch);
}

#ifdef CTMQ_BINARY_CONV_X86
#define CTMQ_TARGET_AVX2 __attribute__((target("avx2,popcnt,bmi2")))

// Transposes an 8x8 bit matrix held as bytes (byte j, bit i -> byte i, bit j).
inline uint64_t transpose8x8(uint64_t x) {
  uint64_t t = (x ^ (x >> 7)) & 0x00aa00aa00aa00aaULL;
  x ^= t ^ (t << 7);
  t = (x ^ (x >> 14)) & 0x0000cccc0000ccccULL;
  x ^= t ^ (t << 14);
  t = (x ^ (x >> 28)) & 0x00000000f0f0f0f0ULL;
  x ^= t ^ (t << 28);
  return x;
}

// Pack (AVX2): as pack_image_portable. 8 channels x 8 pixels at a time: the
// comparisons give one byte per channel (a bit per pixel), an 8x8 bit
// transpose turns them into one byte per pixel (a bit per channel).
template <int kPredicate>
CTMQ_TARGET_AVX2 void pack_image_avx2_impl(const float* x, const Plan& p, float threshold,
                                           uint64_t* bits) {
  const int64_t hw = p.height * p.width;
  const int64_t pixel_bytes = p.pixel_words * 8;
  std::fill(bits, bits + hw * p.pixel_words, 0);
  auto* bytes = reinterpret_cast<uint8_t*>(bits);  // x86: little-endian
  const __m256 thr = _mm256_set1_ps(threshold);
  const int64_t hw8 = hw / 8 * 8;
  for (int64_t c0 = 0; c0 < p.channels; c0 += 8) {
    const int64_t nc = std::min<int64_t>(8, p.channels - c0);
    for (int64_t i = 0; i < hw8; i += 8) {
      uint64_t m = 0;
      for (int64_t j = 0; j < nc; ++j) {
        const __m256 v = _mm256_loadu_ps(x + (c0 + j) * hw + i);
        m |= static_cast<uint64_t>(_mm256_movemask_ps(_mm256_cmp_ps(v, thr, kPredicate)))
             << (8 * j);
      }
      m = transpose8x8(m);
      for (int64_t q = 0; q < 8; ++q) {
        bytes[(i + q) * pixel_bytes + c0 / 8] = static_cast<uint8_t>(m >> (8 * q));
      }
    }
    for (int64_t i = hw8; i < hw; ++i) {
      for (int64_t j = 0; j < nc; ++j) {
        const float v = x[(c0 + j) * hw + i];
        const bool set = kPredicate == _CMP_LT_OQ ? v < threshold : v > threshold;
        if (set) bytes[i * pixel_bytes + c0 / 8] |= static_cast<uint8_t>(1u << j);
      }
    }
  }
}

void pack_image_avx2(const float* x, const Plan& p, InputCoding coding, uint64_t* bits) {
  if (coding == InputCoding::kSigned) {
    pack_image_avx2_impl<_CMP_LT_OQ>(x, p, 0.0f, bits);
  } else {
    pack_image_avx2_impl<_CMP_GT_OQ>(x, p, 0.5f, bits);
  }
}

// `nibble_bits`: the bit image in the nibble layout when in_channels is a
// multiple of 64, else null.
CTMQ_TARGET_AVX2 void gather_avx2(const uint64_t* bits, const uint64_t* nibble_bits, const Plan& p,
                                  int64_t p0, int64_t nrows, uint64_t* rows, int32_t* rowpop,
                                  uint64_t* scratch) {
  if (nibble_bits) {
    gather_rows_aligned_nibbles(nibble_bits, p, p0, nrows, rows, rowpop);
  } else {
    gather_rows<true>(bits, p, p0, nrows, rows, rowpop, scratch);
  }
}

// Sums the 32 byte counters of each of a0..a3 into lanes 0..3.
CTMQ_TARGET_AVX2 inline __m128i reduce4(__m256i a0, __m256i a1, __m256i a2, __m256i a3) {
  const __m256i zero = _mm256_setzero_si256();
  const __m256i s0 = _mm256_sad_epu8(a0, zero), s1 = _mm256_sad_epu8(a1, zero);
  const __m256i s2 = _mm256_sad_epu8(a2, zero), s3 = _mm256_sad_epu8(a3, zero);
  // 32-bit lanes [s0a s1a s0b s1b | s0c s1c s0d s1d] and likewise for s2, s3.
  const __m256i v = _mm256_blend_epi32(s0, _mm256_slli_epi64(s1, 32), 0xaa);
  const __m256i w = _mm256_blend_epi32(s2, _mm256_slli_epi64(s3, 32), 0xaa);
  const __m256i z = _mm256_add_epi32(_mm256_unpacklo_epi64(v, w), _mm256_unpackhi_epi64(v, w));
  return _mm_add_epi32(_mm256_castsi256_si128(z), _mm256_extracti128_si256(z, 1));
}

// AVX2 GEMM tile: popcounts of kTileRows rows x C filters in the nibble
// layout (`steps` vectors each); counts[c] holds filter c's four rows. Byte
// counters grow by at most 4 per step, so they are reduced every 63 steps.
// C = 1: with more filters per tile GCC 12 spilled accumulators to the
// stack (C = 3) or added register copies (C = 2), both slower on Zen 3.
template <int64_t C, bool kAndNot>
CTMQ_TARGET_AVX2 inline __attribute__((always_inline)) void tile_nibbles(const __m256i* a,
                                                                         const __m256i* f,
                                                                         int64_t steps,
                                                                         __m128i* counts) {
  static_assert(kTileRows == 4, "reduce4 reduces four rows");
  const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2,
                                         1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
#pragma GCC unroll 16
  for (int64_t c = 0; c < C; ++c) counts[c] = _mm_setzero_si128();
  for (int64_t s0 = 0; s0 < steps; s0 += 63) {
    const int64_t s1 = std::min<int64_t>(steps, s0 + 63);
    __m256i acc[kTileRows][C];
#pragma GCC unroll 16
    for (int64_t r = 0; r < kTileRows; ++r)
#pragma GCC unroll 16
      for (int64_t c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_si256();
    for (int64_t s = s0; s < s1; ++s) {
      __m256i w[C];
#pragma GCC unroll 16
      for (int64_t c = 0; c < C; ++c) w[c] = _mm256_loadu_si256(f + c * steps + s);
#pragma GCC unroll 16
      for (int64_t r = 0; r < kTileRows; ++r) {
        const __m256i x = _mm256_loadu_si256(a + r * steps + s);
#pragma GCC unroll 16
        for (int64_t c = 0; c < C; ++c) {
          const __m256i y = kAndNot ? _mm256_andnot_si256(w[c], x) : _mm256_xor_si256(x, w[c]);
          acc[r][c] = _mm256_add_epi8(acc[r][c], _mm256_shuffle_epi8(table, y));
        }
      }
    }
#pragma GCC unroll 16
    for (int64_t c = 0; c < C; ++c) {
      counts[c] = _mm_add_epi32(counts[c], reduce4(acc[0][c], acc[1][c], acc[2][c], acc[3][c]));
    }
  }
}

// AVX2 GEMM over one chunk: for each block of filters (kept in L2), each row
// tile of the chunk (in L1) against every filter of the block, the epilogue
// on the tile's four positions at once (filter-outer was slower: the rows
// then come from L2). The border correction is looked up only
// for row tiles that touch the border.
template <bool kAndNot>
CTMQ_TARGET_AVX2 void gemm_avx2_impl(const uint64_t* rows, int64_t nrows, int64_t p0,
                                     const uint64_t* filters, int64_t padded_filters,
                                     int64_t row_words, const Epilogue& ep) {
  constexpr int64_t C = kAvx2TileCols;
  const int64_t steps = row_words / 4;
  const int64_t npos = ep.npos, out_channels = ep.out_channels;
  const int32_t* const pos_class = ep.pos_class;
  const int32_t* const rowpop = ep.rowpop;
  const int32_t* const corr_table = ep.corr;
  float* const out = ep.out;
  const __m128i bits = _mm_set1_epi32(static_cast<int32_t>(ep.bits));
  const int64_t block = std::max<int64_t>(C, kFilterBlockBytes / (row_words * 8) / C * C);
  for (int64_t f0 = 0; f0 < padded_filters; f0 += block) {
    const int64_t f1 = std::min(padded_filters, f0 + block);
    for (int64_t r0 = 0; r0 < nrows; r0 += kTileRows) {
      const int64_t pos = p0 + r0;
      const auto* a = reinterpret_cast<const __m256i*>(rows + r0 * row_words);
      for (int64_t o0 = f0; o0 < f1; o0 += C) {
        const auto* f = reinterpret_cast<const __m256i*>(filters + o0 * row_words);
        __m128i counts[C];
        tile_nibbles<C, kAndNot>(a, f, steps, counts);
        for (int64_t c = 0; c < C; ++c) {
          const int64_t o = o0 + c;
          if (o >= out_channels) break;
          __m128i dot;
          if (kAndNot) {
            dot = _mm_sub_epi32(_mm_slli_epi32(counts[c], 1),
                                _mm_loadu_si128(reinterpret_cast<const __m128i*>(rowpop + r0)));
          } else {
            dot = _mm_sub_epi32(bits, _mm_slli_epi32(counts[c], 1));
            const int32_t* cls = pos_class + pos;
            if ((cls[0] | cls[1] | cls[2] | cls[3]) != 0) {
              const int32_t* corr = corr_table + o;
              dot = _mm_sub_epi32(
                  dot, _mm_setr_epi32(corr[cls[0] * out_channels], corr[cls[1] * out_channels],
                                      corr[cls[2] * out_channels], corr[cls[3] * out_channels]));
            }
          }
          const __m128 value = _mm_add_ps(
              _mm_mul_ps(_mm_cvtepi32_ps(dot), _mm_set1_ps(ep.scale[o])), _mm_set1_ps(ep.bias[o]));
          float* dst = out + o * npos + pos;
          if (pos + kTileRows <= npos) {
            _mm_storeu_ps(dst, value);
          } else {
            alignas(16) float tmp[kTileRows];
            _mm_store_ps(tmp, value);
            for (int64_t r = 0; pos + r < npos; ++r) dst[r] = tmp[r];
          }
        }
      }
    }
  }
}

void gemm_avx2(const uint64_t* rows, int64_t nrows, int64_t p0, const uint64_t* filters,
               int64_t padded_filters, int64_t row_words, const Epilogue& ep) {
  if (ep.coding == InputCoding::kSigned) {
    gemm_avx2_impl<false>(rows, nrows, p0, filters, padded_filters, row_words, ep);
  } else {
    gemm_avx2_impl<true>(rows, nrows, p0, filters, padded_filters, row_words, ep);
  }
}
#endif  // CTMQ_BINARY_CONV_X86

// Border classes along one axis: for each output coordinate, the index of
// its range [lo, hi) of kernel taps that fall inside the input; class 0 is
// the full range (no padding).
struct AxisClasses {
  std::vector<int32_t> of;                          // [output size]
  std::vector<std::pair<int64_t, int64_t>> ranges;  // [class]
};

AxisClasses axis_classes(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding) {
  AxisClasses a;
  a.ranges.push_back({0, k});
  a.of.resize(out);
  for (int64_t o = 0; o < out; ++o) {
    const std::pair<int64_t, int64_t> range{std::max<int64_t>(0, padding - o * stride),
                                            std::min<int64_t>(k, in + padding - o * stride)};
    auto it = std::find(a.ranges.begin(), a.ranges.end(), range);
    if (it == a.ranges.end()) it = a.ranges.insert(a.ranges.end(), range);
    a.of[o] = static_cast<int32_t>(it - a.ranges.begin());
  }
  return a;
}

// Scratch buffers reused across calls on one thread.
struct Scratch {
  std::vector<uint64_t> bits, nibble_bits, rows, gather_row;
  std::vector<int32_t> rowpop, pos_class, corr;
};

}  // namespace

std::string auto_kernel_path_name() { return cpu_has_avx2() ? "avx2" : "portable"; }

PackedBinaryConv PackedBinaryConv::from_weights(const float* weight,
                                                const BinaryConvGeometry& geometry) {
  CTMQ_CHECK(weight != nullptr, "PackedBinaryConv::from_weights: weight is null");
  CTMQ_CHECK(geometry.in_channels > 0 && geometry.kernel > 0 && geometry.out_channels > 0,
             "PackedBinaryConv::from_weights: in_channels, out_channels and kernel must be "
             "positive, got "
                 << geometry.in_channels << ", " << geometry.out_channels << ", "
                 << geometry.kernel);
  CTMQ_CHECK(geometry.in_channels <= (int64_t{1} << 24) && geometry.kernel <= 1024,
             "PackedBinaryConv::from_weights: in_channels ("
                 << geometry.in_channels << ") or kernel (" << geometry.kernel << ") too large");
  const int64_t k2 = geometry.kernel * geometry.kernel;
  const int64_t bits = geometry.in_channels * k2;
  const int64_t wpf = ceil_div(bits, 64);
  std::vector<uint64_t> words(geometry.out_channels * wpf, 0);
  for (int64_t o = 0; o < geometry.out_channels; ++o) {
    for (int64_t c = 0; c < geometry.in_channels; ++c) {
      for (int64_t t = 0; t < k2; ++t) {
        if (weight[(o * geometry.in_channels + c) * k2 + t] < 0.0f) {
          const int64_t j = t * geometry.in_channels + c;
          words[o * wpf + j / 64] |= uint64_t{1} << (j % 64);
        }
      }
    }
  }
  return PackedBinaryConv(geometry, std::move(words));
}

PackedBinaryConv::PackedBinaryConv(const BinaryConvGeometry& geometry, std::vector<uint64_t> words)
    : geometry_(geometry), words_(std::move(words)) {
  const auto& g = geometry_;
  CTMQ_CHECK(
      g.in_channels > 0 && g.out_channels > 0 && g.kernel > 0 && g.stride > 0 && g.padding >= 0,
      "PackedBinaryConv: geometry must have positive in_channels, out_channels, kernel "
      "and stride and padding >= 0, got in_channels "
          << g.in_channels << ", out_channels " << g.out_channels << ", kernel " << g.kernel
          << ", stride " << g.stride << ", padding " << g.padding);
  CTMQ_CHECK(g.in_channels <= (int64_t{1} << 24) && g.kernel <= 1024,
             "PackedBinaryConv: in_channels (" << g.in_channels << ") or kernel (" << g.kernel
                                               << ") too large");
  const int64_t k2 = g.kernel * g.kernel;
  const int64_t bits = g.in_channels * k2;
  const int64_t wpf = words_per_filter();
  CTMQ_CHECK(static_cast<int64_t>(words_.size()) == g.out_channels * wpf,
             "PackedBinaryConv: expected " << g.out_channels * wpf << " filter words ("
                                           << g.out_channels << " filters x " << wpf << " words of "
                                           << bits << " bits), got " << words_.size());
  const int64_t tail = bits % 64;
  if (tail != 0) {
    const uint64_t pad_mask = ~uint64_t{0} << tail;
    for (int64_t o = 0; o < g.out_channels; ++o) {
      CTMQ_CHECK((words_[o * wpf + wpf - 1] & pad_mask) == 0,
                 "PackedBinaryConv: filter " << o << " has a bit set past its " << bits
                                             << " bits (in word " << o * wpf + wpf - 1
                                             << "); the weight bits are corrupt or were packed "
                                                "for another geometry");
    }
  }

  const int64_t portable_count = round_up(g.out_channels, kPortableTileCols);
  portable_filters_.assign(portable_count * wpf, 0);
  std::copy(words_.begin(), words_.end(), portable_filters_.begin());

  const int64_t steps = ceil_div(bits, 128);
  const int64_t nibble_count = round_up(g.out_channels, kAvx2TileCols);
  nibble_filters_.assign(nibble_count * steps * 4, 0);
  std::vector<uint64_t> padded(steps * 2);
  for (int64_t o = 0; o < g.out_channels; ++o) {
    std::fill(padded.begin(), padded.end(), 0);
    std::copy(words_.begin() + o * wpf, words_.begin() + (o + 1) * wpf, padded.begin());
    to_nibbles(padded.data(), steps * 2, nibble_filters_.data() + o * steps * 4);
  }

  tap_sums_.assign(g.out_channels * k2, 0);
  for (int64_t o = 0; o < g.out_channels; ++o) {
    for (int64_t t = 0; t < k2; ++t) {
      int32_t negative = 0;
      for (int64_t c = 0; c < g.in_channels; ++c) {
        const int64_t j = t * g.in_channels + c;
        negative += static_cast<int32_t>((words_[o * wpf + j / 64] >> (j % 64)) & 1);
      }
      tap_sums_[o * k2 + t] = static_cast<int32_t>(g.in_channels) - 2 * negative;
    }
  }
}

int64_t PackedBinaryConv::words_per_filter() const {
  return ceil_div(geometry_.in_channels * geometry_.kernel * geometry_.kernel, 64);
}

void PackedBinaryConv::forward(const float* input, int64_t batch, int64_t height, int64_t width,
                               InputCoding coding, const float* scale, const float* bias,
                               float* output, KernelPath path) const {
  const auto& g = geometry_;
  CTMQ_CHECK(batch >= 0 && height > 0 && width > 0,
             "PackedBinaryConv::forward: expected batch >= 0 and a positive input size, got batch "
                 << batch << ", " << height << "x" << width);
  Plan p{};
  p.channels = g.in_channels;
  p.kernel = g.kernel;
  p.stride = g.stride;
  p.padding = g.padding;
  p.height = height;
  p.width = width;
  p.out_h = output_size(height);
  p.out_w = output_size(width);
  CTMQ_CHECK(p.out_h >= 1 && p.out_w >= 1 && height + 2 * g.padding >= g.kernel &&
                 width + 2 * g.padding >= g.kernel,
             "PackedBinaryConv::forward: input " << height << "x" << width << " with padding "
                                                 << g.padding << " is smaller than the kernel "
                                                 << g.kernel << ": the output size would be < 1");
  CTMQ_CHECK(batch == 0 || (input && scale && bias && output),
             "PackedBinaryConv::forward: null input, scale, bias or output pointer");
  bool avx2 = false;
  if (path == KernelPath::kAvx2) {
    CTMQ_CHECK(cpu_has_avx2(),
               "PackedBinaryConv::forward: KernelPath::kAvx2 requested but this CPU lacks "
               "AVX2/POPCNT/BMI2; use KernelPath::kAuto or kPortable");
    avx2 = true;
  } else if (path == KernelPath::kAuto) {
    avx2 = cpu_has_avx2();
  }
  p.npos = p.out_h * p.out_w;
  p.count_rows = coding == InputCoding::kUnsigned;
  p.pixel_words = ceil_div(g.in_channels, 64);
  p.bits = g.in_channels * g.kernel * g.kernel;
  const int64_t wpf = words_per_filter();
  const int64_t steps = ceil_div(p.bits, 128);
  // Portable rows are gathered in place, so they keep the spare word.
  p.row_words = avx2 ? steps * 4 : wpf + 1;
  p.gather_words = avx2 ? steps * 2 + 1 : wpf + 1;
  const int64_t chunk = std::min(
      round_up(p.npos, kTileRows),
      std::max<int64_t>(kTileRows, kChunkBytes / (p.row_words * 8) / kTileRows * kTileRows));

  thread_local Scratch s;
  s.bits.resize(height * width * p.pixel_words);
  s.rows.resize(chunk * p.row_words);
  s.gather_row.resize(p.gather_words);
  s.rowpop.resize(chunk);

  // Border classes and the padded taps' weight sums per class.
  const AxisClasses ys = axis_classes(height, p.out_h, g.kernel, g.stride, g.padding);
  const AxisClasses xs = axis_classes(width, p.out_w, g.kernel, g.stride, g.padding);
  const int64_t nx = static_cast<int64_t>(xs.ranges.size());
  const int64_t nclasses = static_cast<int64_t>(ys.ranges.size()) * nx;
  s.pos_class.assign(round_up(p.npos, kTileRows), 0);  // tiles read past npos
  for (int64_t y = 0; y < p.out_h; ++y)
    for (int64_t x = 0; x < p.out_w; ++x)
      s.pos_class[y * p.out_w + x] = static_cast<int32_t>(ys.of[y] * nx + xs.of[x]);
  s.corr.assign(nclasses * g.out_channels, 0);
  const int64_t k2 = g.kernel * g.kernel;
  for (int64_t cls = 1; cls < nclasses; ++cls) {
    const auto [ylo, yhi] = ys.ranges[cls / nx];
    const auto [xlo, xhi] = xs.ranges[cls % nx];
    for (int64_t ky = 0; ky < g.kernel; ++ky) {
      for (int64_t kx = 0; kx < g.kernel; ++kx) {
        if (ky >= ylo && ky < yhi && kx >= xlo && kx < xhi) continue;
        for (int64_t o = 0; o < g.out_channels; ++o) {
          s.corr[cls * g.out_channels + o] += tap_sums_[o * k2 + ky * g.kernel + kx];
        }
      }
    }
  }

  Epilogue ep{coding, p.bits,  g.out_channels,     p.npos,        scale,
              bias,   nullptr, s.pos_class.data(), s.corr.data(), s.rowpop.data()};
  const int64_t in_image = g.in_channels * height * width;
  for (int64_t n = 0; n < batch; ++n) {
    ep.out = output + n * g.out_channels * p.npos;
#ifdef CTMQ_BINARY_CONV_X86
    if (avx2) {
      pack_image_avx2(input + n * in_image, p, coding, s.bits.data());
      const bool aligned = g.in_channels % 64 == 0;
      if (aligned) {
        s.nibble_bits.resize(s.bits.size() * 2);
        to_nibbles(s.bits.data(), static_cast<int64_t>(s.bits.size()), s.nibble_bits.data());
      }
      for (int64_t p0 = 0; p0 < p.npos; p0 += chunk) {
        const int64_t nrows = std::min(chunk, round_up(p.npos - p0, kTileRows));
        gather_avx2(s.bits.data(), aligned ? s.nibble_bits.data() : nullptr, p, p0, nrows,
                    s.rows.data(), s.rowpop.data(), s.gather_row.data());
        gemm_avx2(s.rows.data(), nrows, p0, nibble_filters_.data(),
                  static_cast<int64_t>(nibble_filters_.size()) / p.row_words, p.row_words, ep);
      }
      continue;
    }
#endif
    pack_image_portable(input + n * in_image, p, coding, s.bits.data());
    for (int64_t p0 = 0; p0 < p.npos; p0 += chunk) {
      const int64_t nrows = std::min(chunk, round_up(p.npos - p0, kTileRows));
      gather_portable(s.bits.data(), p, p0, nrows, s.rows.data(), s.rowpop.data(),
                      s.gather_row.data());
      gemm_portable(s.rows.data(), nrows, p0, portable_filters_.data(),
                    static_cast<int64_t>(portable_filters_.size()) / wpf, wpf, ep);
    }
  }
}

}  // namespace ctmq::deploy
