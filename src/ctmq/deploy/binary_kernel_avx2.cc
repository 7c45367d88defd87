// The AVX2 GEMM of the binary convolution (binary_kernel_avx2.h).
#include "ctmq/deploy/binary_kernel_avx2.h"

#ifdef CTMQ_BINARY_CONV_X86
#include <immintrin.h>

#include <algorithm>
#include <cstring>

namespace ctmq::deploy::detail {
namespace {

template <bool kAndNot, int64_t R, int64_t C>
CTMQ_TARGET_AVX2 inline __attribute__((always_inline)) void tile_lanes(const uint64_t* rows,
                                                                       int64_t group_words,
                                                                       const uint64_t* filters,
                                                                       int64_t w0, int64_t w1,
                                                                       __m256i* sums) {
  const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2,
                                         1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  __m256i acc[R][C];
#pragma GCC unroll 16
  for (int64_t r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int64_t c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_si256();
  for (int64_t w = w0; w < w1; ++w) {
    const uint64_t* f = filters + w * kGroupWords;
#pragma GCC unroll 16
    for (int64_t c = 0; c < C; ++c) {
      const uint64_t* fc = f + (c / kLanes) * group_words + c % kLanes;
      const __m256i flo = _mm256_set1_epi64x(static_cast<int64_t>(fc[0]));
      const __m256i fhi = _mm256_set1_epi64x(static_cast<int64_t>(fc[kLanes]));
#pragma GCC unroll 16
      for (int64_t r = 0; r < R; ++r) {
        const auto* a = reinterpret_cast<const __m256i*>(rows + r * group_words + w * kGroupWords);
        const __m256i xlo = _mm256_loadu_si256(a), xhi = _mm256_loadu_si256(a + 1);
        const __m256i ylo = kAndNot ? _mm256_andnot_si256(flo, xlo) : _mm256_xor_si256(xlo, flo);
        const __m256i yhi = kAndNot ? _mm256_andnot_si256(fhi, xhi) : _mm256_xor_si256(xhi, fhi);
        acc[r][c] = _mm256_add_epi8(acc[r][c], _mm256_add_epi8(_mm256_shuffle_epi8(table, ylo),
                                                               _mm256_shuffle_epi8(table, yhi)));
      }
    }
  }
  const __m256i zero = _mm256_setzero_si256();
#pragma GCC unroll 16
  for (int64_t r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int64_t c = 0; c < C; ++c) sums[r * C + c] = _mm256_sad_epu8(acc[r][c], zero);
}

// Rows longer than kMaxBlockWords: the tile block by block, its sums added
// in memory (not inlined, so the short-row kernel keeps its registers).
template <bool kAndNot, int64_t R, int64_t C>
CTMQ_TARGET_AVX2 __attribute__((noinline)) void tile_lanes_long(const uint64_t* rows,
                                                                int64_t group_words,
                                                                const uint64_t* filters,
                                                                int64_t words, __m256i* sums) {
  constexpr int64_t n = R * C;
  for (int64_t i = 0; i < n; ++i) sums[i] = _mm256_setzero_si256();
  for (int64_t w0 = 0; w0 < words; w0 += kMaxBlockWords) {
    __m256i part[n];
    tile_lanes<kAndNot, R, C>(rows, group_words, filters, w0, std::min(words, w0 + kMaxBlockWords),
                              part);
    for (int64_t i = 0; i < n; ++i) sums[i] = _mm256_add_epi64(sums[i], part[i]);
  }
}

// AVX2 GEMM over one chunk in the lane layout: for each block of filter
// groups (kept in L2), each 8-position tile of the chunk (in L1) against
// every filter group of the block; the tile's sums go straight to the
// output: filters (c, c + 1) of one row vector are merged into eight int32
// lanes [c: 4 positions | c + 1: 4 positions] (shift, blend, permute), so
// the dot, the float conversion and scale/bias take one vector op each for
// eight outputs, and each half is one 128-bit store into NCHW. The border
// correction is looked up only for tiles that touch the border. Positions
// run over the images of a pass (position m: image m / npos, m % npos); a
// row vector whose four positions are not consecutive in one image (the
// image edge, the end of the pass) is stored lane by lane. The output
// addresses are worked out once per row tile, not per filter group.
template <bool kAndNot, bool kLong, int64_t R, int64_t C>
CTMQ_TARGET_AVX2 void gemm_lanes(const uint64_t* rows, int64_t nrows, int64_t p0,
                                 const uint64_t* filters, int64_t filter_groups, int64_t words,
                                 const LaneEpilogue& le) {
  const Epilogue& ep = *le.ep;
  constexpr int64_t kTilePositions = R * kLanes;
  const int64_t group_words = words * kGroupWords;
  const int64_t npos = ep.npos, out_channels = ep.out_channels, total = ep.total;
  const int64_t image_floats = out_channels * npos;
  const __m256i bits = _mm256_set1_epi32(static_cast<int32_t>(ep.bits));
  const __m256i merge = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const int64_t block =
      std::max<int64_t>(1, kFilterBlockBytes / (group_words * static_cast<int64_t>(8)));
  for (int64_t g0 = 0; g0 < filter_groups; g0 += block) {
    const int64_t g1 = std::min(filter_groups, g0 + block);
    for (int64_t r0 = 0; r0 < nrows; r0 += kTilePositions) {
      const uint64_t* a = rows + (r0 / kLanes) * group_words;
      const int32_t* cls = ep.pos_class + p0 + r0;
      bool border = false;
      for (int64_t i = 0; i < kTilePositions; ++i) border |= cls[i] != 0;
      // Per row vector: its output (filter 0) if its lanes are consecutive
      // in one image, else per lane (nullptr past `total`).
      // One division per tile; the lanes step through (image, position).
      float* vector_out[R];
      float* lane_out[R][kLanes];
      // The border table's row of each position (signed coding).
      const int32_t* border_row[R][kLanes];
      for (int64_t r = 0; r < R; ++r)
        for (int64_t i = 0; i < kLanes; ++i)
          border_row[r][i] = ep.corr + cls[r * kLanes + i] * out_channels;
      {
        const int64_t m = p0 + r0;
        float* image = ep.out + (m / npos) * image_floats;
        int64_t q = m % npos;
        for (int64_t r = 0; r < R; ++r) {
          vector_out[r] = q + kLanes <= npos ? image + q : nullptr;
          for (int64_t i = 0; i < kLanes; ++i) {
            lane_out[r][i] = m + r * kLanes + i < total ? image + q : nullptr;
            if (++q == npos) {
              q = 0;
              image += image_floats;
            }
          }
        }
      }
      for (int64_t g = g0; g < g1; ++g) {
        __m256i sums[R * C];
        if (kLong) {
          tile_lanes_long<kAndNot, R, C>(
              a, group_words, filters + (g * C / kLanes) * group_words + (g * C) % kLanes, words,
              sums);
        } else {
          tile_lanes<kAndNot, R, C>(a, group_words,
                                    filters + (g * C / kLanes) * group_words + (g * C) % kLanes, 0,
                                    words, sums);
        }
#pragma GCC unroll 4
        for (int64_t r = 0; r < R; ++r) {
          if (p0 + r0 + r * kLanes >= total) break;
#pragma GCC unroll 4
          for (int64_t c = 0; c < C; c += 2) {
            const int64_t o = g * C + c;
            if (o >= out_channels) break;
            // Lane i of `pair`: the counts of filters o and o + 1 at
            // position i, as two int32 (the order of the border table's
            // entries for o, o + 1); `merge` then gives [o: 4 positions |
            // o + 1: 4 positions].
            const __m256i pair = _mm256_blend_epi32(
                sums[r * C + c], _mm256_slli_epi64(sums[r * C + c + 1], 32), 0xaa);
            __m256i dot;
            if (kAndNot) {
              const __m256i pop = _mm256_broadcastsi128_si256(
                  _mm_loadu_si128(reinterpret_cast<const __m128i*>(ep.rowpop + r0 + r * kLanes)));
              dot = _mm256_sub_epi32(_mm256_slli_epi32(_mm256_permutevar8x32_epi32(pair, merge), 1),
                                     pop);
            } else {
              dot = _mm256_sub_epi32(bits, _mm256_slli_epi32(pair, 1));
              if (border) {
                // One 64-bit load per position: the entries of o and o + 1
                // (past out_channels the second is not stored; the table
                // has an element to spare).
                int64_t e[kLanes];
                for (int64_t i = 0; i < kLanes; ++i) std::memcpy(&e[i], border_row[r][i] + o, 8);
                dot = _mm256_sub_epi32(dot, _mm256_setr_epi64x(e[0], e[1], e[2], e[3]));
              }
              dot = _mm256_permutevar8x32_epi32(dot, merge);
            }
            const __m256 value = _mm256_add_ps(
                _mm256_mul_ps(_mm256_cvtepi32_ps(dot), _mm256_loadu_ps(le.scale4 + o * kLanes)),
                _mm256_loadu_ps(le.bias4 + o * kLanes));
            const __m128 v0 = _mm256_castps256_ps128(value), v1 = _mm256_extractf128_ps(value, 1);
            const bool has_second = o + 1 < out_channels;
            if (vector_out[r] != nullptr) {
              float* dst = vector_out[r] + o * npos;
              _mm_storeu_ps(dst, v0);
              if (has_second) _mm_storeu_ps(dst + npos, v1);
            } else {
              alignas(16) float tmp[2 * kLanes];
              _mm_store_ps(tmp, v0);
              _mm_store_ps(tmp + kLanes, v1);
              for (int64_t i = 0; i < kLanes && lane_out[r][i] != nullptr; ++i) {
                float* dst = lane_out[r][i] + o * npos;
                dst[0] = tmp[i];
                if (has_second) dst[npos] = tmp[kLanes + i];
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace

void gemm_avx2(const uint64_t* rows, int64_t nrows, int64_t p0, const uint64_t* filters,
               int64_t filter_tiles, int64_t words, const LaneEpilogue& le) {
  constexpr int64_t R = kTileVectors, C = kTileFilters, WR = kWideVectors, WC = kWideFilters;
  const bool unsigned_coding = le.ep->coding == InputCoding::kUnsigned;
  const bool long_rows = words > kMaxBlockWords;
  const bool wide = wide_tiles(words);
  if (!unsigned_coding && wide) {
    gemm_lanes<false, false, WR, WC>(rows, nrows, p0, filters, filter_tiles, words, le);
  } else if (!unsigned_coding && !long_rows) {
    gemm_lanes<false, false, R, C>(rows, nrows, p0, filters, filter_tiles, words, le);
  } else if (!unsigned_coding) {
    gemm_lanes<false, true, R, C>(rows, nrows, p0, filters, filter_tiles, words, le);
  } else if (wide) {
    gemm_lanes<true, false, WR, WC>(rows, nrows, p0, filters, filter_tiles, words, le);
  } else if (!long_rows) {
    gemm_lanes<true, false, R, C>(rows, nrows, p0, filters, filter_tiles, words, le);
  } else {
    gemm_lanes<true, true, R, C>(rows, nrows, p0, filters, filter_tiles, words, le);
  }
}

}  // namespace ctmq::deploy::detail
#endif  // CTMQ_BINARY_CONV_X86
