// The portable GEMM of the binary convolution (binary_kernel_portable.h).
#include "ctmq/deploy/binary_kernel_portable.h"

#include <algorithm>

namespace ctmq::deploy::detail {
namespace {

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

}  // namespace

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

}  // namespace ctmq::deploy::detail
