// Packing and gathering for the binary convolution (binary_pack.h).
#include "ctmq/deploy/binary_pack.h"

#include <algorithm>
#include <cstring>

#ifdef CTMQ_BINARY_CONV_X86
#include <immintrin.h>
#endif

namespace ctmq::deploy::detail {
namespace {

// ORs the taps of output position `pos` that lie inside the input into `row`
// (filter order of binary_conv.h; padded taps stay 0). `row` must be zeroed.
void gather_row(const uint64_t* bits, const Plan& p, int64_t pos, uint64_t* row) {
  const int64_t k = p.kernel;
  const bool aligned = p.channels % 64 == 0;
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
        std::memcpy(row + offset / 64, src, p.pixel_words * sizeof(uint64_t));
      } else {
        append_bits(row, offset, src, p.channels);
      }
    }
  }
}

}  // namespace

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

void gather_portable(const uint64_t* bits, const Plan& p, int64_t p0, int64_t nrows, uint64_t* rows,
                     int32_t* rowpop) {
  for (int64_t i = 0; i < nrows; ++i) {
    uint64_t* row = rows + i * p.row_words;
    const int64_t pos = p0 + i;
    std::fill(row, row + p.gather_words, 0);
    if (pos < p.npos) gather_row(bits, p, pos, row);
    if (p.count_rows) {
      int32_t count = 0;
      for (int64_t w = 0; w < p.gather_words; ++w) count += __builtin_popcountll(row[w]);
      rowpop[i] = count;
    }
  }
}

void split_nibbles(const uint64_t* bits, int64_t n, uint64_t* lo, uint64_t* hi) {
  for (int64_t i = 0; i < n; ++i) {
    lo[i] = bits[i] & kNibbleMask;
    hi[i] = (bits[i] >> 4) & kNibbleMask;
  }
}

#ifdef CTMQ_BINARY_CONV_X86
namespace {

template <int kPredicate>
CTMQ_TARGET_AVX2 inline __attribute__((always_inline)) __m256i channel_bits(const float* x,
                                                                            int64_t hw, int64_t nc,
                                                                            __m256 thr) {
  __m256i acc = _mm256_setzero_si256();
  for (int64_t j = 0; j < nc; ++j) {
    const __m256 v = _mm256_loadu_ps(x + j * hw);
    acc = _mm256_or_si256(acc,
                          _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(v, thr, kPredicate)),
                                           _mm256_set1_epi32(1 << j)));
  }
  return acc;
}

template <int kPredicate>
CTMQ_TARGET_AVX2 void pack_image_avx2_impl(const float* x, const Plan& p, float threshold,
                                           uint8_t* bytes, int64_t pixel_bytes) {
  const int64_t hw = p.height * p.width;
  std::fill(bytes, bytes + hw * pixel_bytes, 0);
  const __m256 thr = _mm256_set1_ps(threshold);
  const int64_t hw8 = hw / 8 * 8;
  for (int64_t c0 = 0; c0 < p.channels; c0 += 16) {
    const int64_t nc = std::min<int64_t>(16, p.channels - c0);
    const float* xc = x + c0 * hw;
    uint8_t* dst = bytes + c0 / 8;
    for (int64_t i = 0; i < hw8; i += 8) {
      // The full group's loop has a constant trip count (unrolled).
      const __m256i acc = nc == 16 ? channel_bits<kPredicate>(xc + i, hw, 16, thr)
                                   : channel_bits<kPredicate>(xc + i, hw, nc, thr);
      const __m128i pixels =
          _mm_packus_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
      if (pixel_bytes == 2) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i * 2), pixels);
        continue;
      }
      alignas(16) uint16_t v[8];
      _mm_store_si128(reinterpret_cast<__m128i*>(v), pixels);
      for (int64_t q = 0; q < 8; ++q) {
        dst[(i + q) * pixel_bytes] = static_cast<uint8_t>(v[q]);
        if (nc > 8) dst[(i + q) * pixel_bytes + 1] = static_cast<uint8_t>(v[q] >> 8);
      }
    }
    for (int64_t i = hw8; i < hw; ++i) {
      unsigned v = 0;
      for (int64_t j = 0; j < nc; ++j) {
        const float f = xc[j * hw + i];
        const bool set = kPredicate == _CMP_LT_OQ ? f < threshold : f > threshold;
        v |= static_cast<unsigned>(set) << j;
      }
      dst[i * pixel_bytes] = static_cast<uint8_t>(v);
      if (nc > 8) dst[i * pixel_bytes + 1] = static_cast<uint8_t>(v >> 8);
    }
  }
}

// Copies one position's contiguous nibble rows (W words each) into its lane
// of the group (`group` points at the lane).
inline void scatter_lane(const uint64_t* lo, const uint64_t* hi, int64_t words, uint64_t* group) {
  for (int64_t w = 0; w < words; ++w) {
    group[w * kGroupWords] = lo[w];
    group[w * kGroupWords + kLanes] = hi[w];
  }
}

inline void zero_lane(int64_t words, uint64_t* group) {
  for (int64_t w = 0; w < words; ++w) group[w * kGroupWords] = group[w * kGroupWords + kLanes] = 0;
}

// Appends bit strings of up to 64 bits to one lane of a group (both nibble
// halves at once), word by word, in registers: a finished word is stored
// straight into the lane layout.
struct LaneWriter {
  uint64_t* dst;  // the lane's next word (half 0; half 1 is kLanes further)
  uint64_t lo = 0, hi = 0;
  int fill = 0;  // bits in lo and hi, < 64

  // l and h have no bits at or above nbits (1..64).
  inline void put(uint64_t l, uint64_t h, int nbits) {
    lo |= l << fill;
    hi |= h << fill;
    fill += nbits;
    if (fill >= 64) {
      dst[0] = lo;
      dst[kLanes] = hi;
      dst += kGroupWords;
      fill -= 64;
      lo = fill > 0 ? l >> (nbits - fill) : 0;
      hi = fill > 0 ? h >> (nbits - fill) : 0;
    }
  }
  inline void finish() {
    if (fill > 0) {
      dst[0] = lo;
      dst[kLanes] = hi;
    }
  }
};

// gather (lane layout), in_channels % 8 == 0: since tap t of a row holds
// bits [t * in_channels, (t + 1) * in_channels) and the row is a
// little-endian byte string, tap t is bytes [t * tap_bytes, (t + 1) *
// tap_bytes), and the taps of one kernel row ky are the k consecutive
// pixels of one padded image row: one run of span = k * tap_bytes bytes per
// ky and nibble half, with no bounds checks (padded taps read the zero
// border). Each run is read in 8-byte loads and appended by a LaneWriter,
// so the words are assembled in registers (byte copies into a scratch row
// read back as words stalled on store forwarding).
// The positions are those of a pass of several images (position m is
// position m % npos of image m / npos; the padded images lie image_bytes
// apart), so a chunk and a tile may span images: tiles stay full on small
// images. Positions past `total` get zero rows; rowpop[i] = popcount of row i.
// kK, kSpan > 0: the kernel size and span fixed at compile time (3 x 3
// kernels with 8, 16 or 32 channels), so the loops unroll and the
// LaneWriter's fill states fold to constants; 0: taken from p and img.
template <int64_t kK, int64_t kSpan>
CTMQ_TARGET_AVX2 void gather_lanes_bytes(const PaddedImage& img, const Plan& p, int64_t total,
                                         int64_t p0, int64_t nrows, uint64_t* rows,
                                         int32_t* rowpop) {
  const int64_t k = kK > 0 ? kK : p.kernel, words = p.row_words;
  const int64_t span = kSpan > 0 ? kSpan : k * img.tap_bytes;
  const int64_t row_bytes = img.width * img.tap_bytes;
  const int64_t first = p0 % p.npos;
  int64_t oy = first / p.out_w, ox = first % p.out_w;
  const uint8_t* image_lo = img.lo + (p0 / p.npos) * img.image_bytes;
  const uint8_t* image_hi = img.hi + (p0 / p.npos) * img.image_bytes;
  for (int64_t i = 0; i < nrows; ++i) {
    uint64_t* group = rows + (i / kLanes) * words * kGroupWords + i % kLanes;
    if (p0 + i >= total) {
      zero_lane(words, group);
      rowpop[i] = 0;
      continue;
    }
    const int64_t origin = oy * p.stride * row_bytes + ox * p.stride * img.tap_bytes;
    LaneWriter out{group};
#pragma GCC unroll 4
    for (int64_t ky = 0; ky < k; ++ky) {
      const uint8_t* src_lo = image_lo + origin + ky * row_bytes;
      const uint8_t* src_hi = image_hi + origin + ky * row_bytes;
#pragma GCC unroll 4
      for (int64_t b = 0; b < span; b += 8) {
        uint64_t l, h;
        std::memcpy(&l, src_lo + b, 8);
        std::memcpy(&h, src_hi + b, 8);
        const int64_t nbytes = std::min<int64_t>(8, span - b);
        if (nbytes < 8) {
          const uint64_t mask = (uint64_t{1} << (8 * nbytes)) - 1;
          l &= mask;
          h &= mask;
        }
        out.put(l, h, static_cast<int>(8 * nbytes));
      }
    }
    out.finish();
    if (p.count_rows) {
      int32_t count = 0;
      for (int64_t w = 0; w < words; ++w)
        count += __builtin_popcountll(group[w * kGroupWords]) +
                 __builtin_popcountll(group[w * kGroupWords + kLanes]);
      rowpop[i] = count;
    }
    if (++ox == p.out_w) {
      ox = 0;
      if (++oy == p.out_h) {
        oy = 0;
        image_lo += img.image_bytes;
        image_hi += img.image_bytes;
      }
    }
  }
}

}  // namespace

void pack_image_avx2(const float* x, const Plan& p, InputCoding coding, uint8_t* bytes,
                     int64_t pixel_bytes) {
  if (coding == InputCoding::kSigned) {
    pack_image_avx2_impl<_CMP_LT_OQ>(x, p, 0.0f, bytes, pixel_bytes);
  } else {
    pack_image_avx2_impl<_CMP_GT_OQ>(x, p, 0.5f, bytes, pixel_bytes);
  }
}

ByteGather select_byte_gather(int64_t kernel, int64_t tap_bytes) {
  return kernel != 3       ? gather_lanes_bytes<0, 0>
         : tap_bytes == 1  ? gather_lanes_bytes<3, 3>
         : tap_bytes == 2  ? gather_lanes_bytes<3, 6>
         : tap_bytes == 4  ? gather_lanes_bytes<3, 12>
         : tap_bytes == 8  ? gather_lanes_bytes<3, 24>
         : tap_bytes == 16 ? gather_lanes_bytes<3, 48>
                           : gather_lanes_bytes<0, 0>;
}

CTMQ_TARGET_AVX2 void gather_lanes_shift(const uint64_t* bits, const Plan& p, int64_t p0,
                                         int64_t nrows, uint64_t* rows, int32_t* rowpop,
                                         uint64_t* scratch) {
  const int64_t words = p.row_words;
  uint64_t* lo_row = scratch;
  uint64_t* hi_row = scratch + words + 1;
  uint64_t* row = scratch + 2 * (words + 1);  // words + 1
  for (int64_t i = 0; i < nrows; ++i) {
    uint64_t* group = rows + (i / kLanes) * words * kGroupWords + i % kLanes;
    const int64_t pos = p0 + i;
    if (pos >= p.npos) {
      zero_lane(words, group);
      rowpop[i] = 0;
      continue;
    }
    std::fill(row, row + words + 1, 0);
    gather_row(bits, p, pos, row);
    split_nibbles(row, words, lo_row, hi_row);
    if (p.count_rows) {
      int32_t count = 0;
      for (int64_t w = 0; w < words; ++w) count += __builtin_popcountll(row[w]);
      rowpop[i] = count;
    }
    scatter_lane(lo_row, hi_row, words, group);
  }
}
#endif  // CTMQ_BINARY_CONV_X86

}  // namespace ctmq::deploy::detail
