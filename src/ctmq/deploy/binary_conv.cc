// Binary convolution by XNOR/AND + popcount on bit-packed operands
// (Rastegari et al. 2016, "XNOR-Net"; the im2col + popcount-GEMM structure
// with register-blocked tiles follows daBNN, Zhang et al. 2019).
//
// forward() per image (AVX2 with in_channels % 8 == 0: per pass of several
// images, whose output positions form one M dimension, so tiles and chunks
// run across image boundaries and stay full on small images):
//   1. pack: the input becomes a bit image, per pixel its channels' bits
//      (ceil(in_channels / 64) words per pixel).
//   2. gather: for a chunk of output positions, each position's receptive
//      field becomes a row of K = in_channels * kernel^2 bits in the filters'
//      bit order (im2col on bits); padded taps are bit 0.
//   3. GEMM: popcount(row XOR filter) (signed) or popcount(row AND NOT filter)
//      (unsigned) for register-blocked tiles of rows x filters.
//   4. epilogue: the integer dot, then scale * dot + bias, into NCHW.
//
// Layouts. Word layout (portable kernel): a row or filter is
// words_per_filter() words in the file's bit order. Lane layout (AVX2
// kernel): the words split into nibbles, four rows or filters interleaved
// per 64-bit lane; described with the AVX2 code below.
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

// gather (portable, word layout): rows [nrows][row_words] for output
// positions [p0, p0 + nrows) (positions past npos are zero rows); the taps
// are copied (in_channels % 64 == 0) or shifted into place; rowpop[i] =
// popcount of row i (used by the unsigned coding).
void gather_portable(const uint64_t* bits, const Plan& p, int64_t p0, int64_t nrows, uint64_t* rows,
                     int32_t* rowpop) {
  const int64_t k = p.kernel;
  const bool aligned = p.channels % 64 == 0;
  for (int64_t i = 0; i < nrows; ++i) {
    uint64_t* row = rows + i * p.row_words;
    const int64_t pos = p0 + i;
    std::fill(row, row + p.gather_words, 0);
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
            std::memcpy(row + offset / 64, src, p.pixel_words * sizeof(uint64_t));
          } else {
            append_bits(row, offset, src, p.channels);
          }
        }
      }
    }
    if (p.count_rows) {
      int32_t count = 0;
      for (int64_t w = 0; w < p.gather_words; ++w) count += __builtin_popcountll(row[w]);
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

#ifdef CTMQ_BINARY_CONV_X86
#define CTMQ_TARGET_AVX2 __attribute__((target("avx2,popcnt,bmi2")))

// Pack (AVX2): as pack_image_portable, into `pixel_bytes` bytes per pixel
// (x86 is little-endian, so pixel_words * 8 gives the words of
// pack_image_portable, and in_channels / 8 a compact byte image). 16
// channels x 8 pixels at a time: each channel's comparison (a 32-bit mask
// per pixel) is ANDed with its bit and ORed in, so each 32-bit lane ends up
// holding its pixel's 16 channel bits; one pack to 16 bits gives the 8
// pixels' bytes in image order (a single 16-byte store when a pixel has 2
// bytes). This replaced movemask + an 8x8 bit transpose per 8 channels.
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

void pack_image_avx2(const float* x, const Plan& p, InputCoding coding, uint8_t* bytes,
                     int64_t pixel_bytes) {
  if (coding == InputCoding::kSigned) {
    pack_image_avx2_impl<_CMP_LT_OQ>(x, p, 0.0f, bytes, pixel_bytes);
  } else {
    pack_image_avx2_impl<_CMP_GT_OQ>(x, p, 0.5f, bytes, pixel_bytes);
  }
}

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

// Splits `bits` (n words) into its nibble halves: lo[i] = bits[i] & M,
// hi[i] = (bits[i] >> 4) & M. The split is per byte, so byte b of lo and hi
// comes from byte b of bits.
void split_nibbles(const uint64_t* bits, int64_t n, uint64_t* lo, uint64_t* hi) {
  for (int64_t i = 0; i < n; ++i) {
    lo[i] = bits[i] & kNibbleMask;
    hi[i] = (bits[i] >> 4) & kNibbleMask;
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

// gather (lane layout), other in_channels: the taps are shifted into a
// word-layout row (append_bits, bounds-checked against the unpadded bit
// image of pixel_words words per pixel), which is then split and scattered.
CTMQ_TARGET_AVX2 void gather_lanes_shift(const uint64_t* bits, const Plan& p, int64_t p0,
                                         int64_t nrows, uint64_t* rows, int32_t* rowpop,
                                         uint64_t* scratch) {
  const int64_t k = p.kernel, words = p.row_words;
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
    const int64_t iy0 = (pos / p.out_w) * p.stride - p.padding;
    const int64_t ix0 = (pos % p.out_w) * p.stride - p.padding;
    for (int64_t ky = 0; ky < k; ++ky) {
      const int64_t iy = iy0 + ky;
      if (iy < 0 || iy >= p.height) continue;
      for (int64_t kx = 0; kx < k; ++kx) {
        const int64_t ix = ix0 + kx;
        if (ix < 0 || ix >= p.width) continue;
        append_bits(row, (ky * k + kx) * p.channels, bits + (iy * p.width + ix) * p.pixel_words,
                    p.channels);
      }
    }
    split_nibbles(row, words, lo_row, hi_row);
    if (p.count_rows) {
      int32_t count = 0;
      for (int64_t w = 0; w < words; ++w) count += __builtin_popcountll(row[w]);
      rowpop[i] = count;
    }
    scatter_lane(lo_row, hi_row, words, group);
  }
}

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

bool wide_tiles(int64_t words) { return words >= 8 && words <= kMaxBlockWords; }

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

// Per-call epilogue data of the AVX2 path: scale and bias with each
// filter's value repeated kLanes times, so that the vector for filters
// (o, o + 1) x four positions is one load.
struct LaneEpilogue {
  const Epilogue* ep;
  const float* scale4;  // [padded filters * kLanes]
  const float* bias4;
};

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

// filter_tiles: ceil(out_channels / C) for the tile shape that
// wide_tiles(words) picks.
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
  std::vector<uint64_t> bits, compact_lo, compact_hi, padded_lo, padded_hi, rows, gather_row;
  std::vector<int32_t> rowpop, pos_class, corr;
  std::vector<float> scale4, bias4;
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

  // Lane layout (see the AVX2 code): groups of four filters, word w's
  // nibble halves at [group][w][half][filter], filters past out_channels 0.
  const int64_t groups = ceil_div(g.out_channels, 4);
  nibble_filters_.assign(groups * wpf * 8, 0);
  for (int64_t o = 0; o < g.out_channels; ++o) {
    uint64_t* group = nibble_filters_.data() + (o / 4) * wpf * 8 + o % 4;
    for (int64_t w = 0; w < wpf; ++w) {
      group[w * 8] = words_[o * wpf + w] & kNibbleMask;
      group[w * 8 + 4] = (words_[o * wpf + w] >> 4) & kNibbleMask;
    }
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
  // Portable rows are gathered in place, so they keep the spare word; AVX2
  // rows are in the lane layout (wpf words x 2 halves per position).
  p.row_words = avx2 ? wpf : wpf + 1;
  p.gather_words = wpf + 1;
#ifdef CTMQ_BINARY_CONV_X86
  const bool wide = wide_tiles(wpf);
  const int64_t tile = !avx2 ? kTileRows : wide ? kWideVectors * kLanes : kTileVectors * kLanes;
#else
  const int64_t tile = kTileRows;
#endif
  const int64_t row_bytes = avx2 ? wpf * 16 : p.row_words * 8;
#ifdef CTMQ_BINARY_CONV_X86
  // AVX2 with in_channels % 8 == 0 takes the byte gather from zero-bordered
  // nibble images, packed for a pass of several images at once (as many as
  // fit kPassBytes), whose positions form one M dimension.
  const bool byte_taps = avx2 && g.in_channels % 8 == 0;
  const int64_t tap_bytes = g.in_channels / 8;
  const int64_t padded_w = width + 2 * g.padding, padded_h = height + 2 * g.padding;
  const int64_t image_bytes = padded_h * padded_w * tap_bytes;
  const int64_t pass_images = byte_taps ? std::clamp<int64_t>(kPassBytes / (2 * image_bytes), 1,
                                                              std::max<int64_t>(batch, 1))
                                        : 1;
#else
  const int64_t pass_images = 1;
#endif
  const int64_t pass_positions = pass_images * p.npos;
  const int64_t chunk = std::min(round_up(pass_positions, tile),
                                 std::max<int64_t>(tile, kChunkBytes / row_bytes / tile * tile));

  thread_local Scratch s;
  s.bits.resize(height * width * p.pixel_words);
  s.rows.resize(chunk * row_bytes / 8);
  s.gather_row.resize(3 * p.gather_words);
  s.rowpop.resize(chunk);

  // Border classes and the padded taps' weight sums per class; the classes
  // repeat per image of a pass (tiles read up to a tile past its end).
  const AxisClasses ys = axis_classes(height, p.out_h, g.kernel, g.stride, g.padding);
  const AxisClasses xs = axis_classes(width, p.out_w, g.kernel, g.stride, g.padding);
  const int64_t nx = static_cast<int64_t>(xs.ranges.size());
  const int64_t nclasses = static_cast<int64_t>(ys.ranges.size()) * nx;
  s.pos_class.assign(round_up(pass_positions, tile) + tile, 0);
  for (int64_t y = 0; y < p.out_h; ++y)
    for (int64_t x = 0; x < p.out_w; ++x)
      s.pos_class[y * p.out_w + x] = static_cast<int32_t>(ys.of[y] * nx + xs.of[x]);
  for (int64_t m = p.npos; m < pass_positions; ++m) s.pos_class[m] = s.pos_class[m - p.npos];
  s.corr.assign(nclasses * g.out_channels + 1, 0);  // + 1: the AVX2 epilogue's pair loads
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

  Epilogue ep{coding,  p.bits, g.out_channels,     p.npos,        scale,          bias,
              nullptr, p.npos, s.pos_class.data(), s.corr.data(), s.rowpop.data()};
  const int64_t in_image = g.in_channels * height * width;
#ifdef CTMQ_BINARY_CONV_X86
  const int64_t filter_groups = ceil_div(g.out_channels, wide ? kWideFilters : kTileFilters);
  LaneEpilogue le{&ep, nullptr, nullptr};
  if (avx2) {
    s.scale4.assign(round_up(g.out_channels, 4) * kLanes, 0.0f);
    s.bias4.assign(round_up(g.out_channels, 4) * kLanes, 0.0f);
    for (int64_t o = 0; o < g.out_channels; ++o) {
      std::fill_n(s.scale4.begin() + o * kLanes, kLanes, scale[o]);
      std::fill_n(s.bias4.begin() + o * kLanes, kLanes, bias[o]);
    }
    le = LaneEpilogue{&ep, s.scale4.data(), s.bias4.data()};
  }
  if (byte_taps) {
    // The border is zeroed once per call; packing writes every interior
    // byte. 8 readable bytes past the last image for the gather's loads.
    const int64_t padded_words = ceil_div(pass_images * image_bytes, 8) + 1;
    s.padded_lo.assign(padded_words, 0);
    s.padded_hi.assign(padded_words, 0);
    const int64_t compact_words = ceil_div(height * width * tap_bytes, 8);
    s.compact_lo.resize(compact_words);
    s.compact_hi.resize(compact_words);
    s.bits.resize(std::max<int64_t>(static_cast<int64_t>(s.bits.size()), compact_words));
    auto* lo = reinterpret_cast<uint8_t*>(s.padded_lo.data());
    auto* hi = reinterpret_cast<uint8_t*>(s.padded_hi.data());
    const PaddedImage img{lo, hi, padded_w, tap_bytes, image_bytes};
    auto* gather = g.kernel != 3     ? gather_lanes_bytes<0, 0>
                   : tap_bytes == 1  ? gather_lanes_bytes<3, 3>
                   : tap_bytes == 2  ? gather_lanes_bytes<3, 6>
                   : tap_bytes == 4  ? gather_lanes_bytes<3, 12>
                   : tap_bytes == 8  ? gather_lanes_bytes<3, 24>
                   : tap_bytes == 16 ? gather_lanes_bytes<3, 48>
                                     : gather_lanes_bytes<0, 0>;
    for (int64_t n0 = 0; n0 < batch; n0 += pass_images) {
      const int64_t images = std::min(pass_images, batch - n0);
      for (int64_t i = 0; i < images; ++i) {
        auto* compact = reinterpret_cast<uint8_t*>(s.bits.data());
        pack_image_avx2(input + (n0 + i) * in_image, p, coding, compact, tap_bytes);
        std::fill(compact + height * width * tap_bytes, compact + compact_words * 8, 0);
        split_nibbles(s.bits.data(), compact_words, s.compact_lo.data(), s.compact_hi.data());
        const auto* clo = reinterpret_cast<const uint8_t*>(s.compact_lo.data());
        const auto* chi = reinterpret_cast<const uint8_t*>(s.compact_hi.data());
        const int64_t line = width * tap_bytes;
        for (int64_t y = 0; y < height; ++y) {
          const int64_t at = i * image_bytes + ((y + g.padding) * padded_w + g.padding) * tap_bytes;
          std::memcpy(lo + at, clo + y * line, line);
          std::memcpy(hi + at, chi + y * line, line);
        }
      }
      ep.out = output + n0 * g.out_channels * p.npos;
      ep.total = images * p.npos;
      for (int64_t m0 = 0; m0 < ep.total; m0 += chunk) {
        const int64_t nrows = std::min(chunk, round_up(ep.total - m0, tile));
        gather(img, p, ep.total, m0, nrows, s.rows.data(), s.rowpop.data());
        gemm_avx2(s.rows.data(), nrows, m0, nibble_filters_.data(), filter_groups, wpf, le);
      }
    }
    return;
  }
#endif
  for (int64_t n = 0; n < batch; ++n) {
    ep.out = output + n * g.out_channels * p.npos;
#ifdef CTMQ_BINARY_CONV_X86
    if (avx2) {
      pack_image_avx2(input + n * in_image, p, coding, reinterpret_cast<uint8_t*>(s.bits.data()),
                      p.pixel_words * 8);
      for (int64_t p0 = 0; p0 < p.npos; p0 += chunk) {
        const int64_t nrows = std::min(chunk, round_up(p.npos - p0, tile));
        gather_lanes_shift(s.bits.data(), p, p0, nrows, s.rows.data(), s.rowpop.data(),
                           s.gather_row.data());
        gemm_avx2(s.rows.data(), nrows, p0, nibble_filters_.data(), filter_groups, wpf, le);
      }
      continue;
    }
#endif
    pack_image_portable(input + n * in_image, p, coding, s.bits.data());
    for (int64_t p0 = 0; p0 < p.npos; p0 += chunk) {
      const int64_t nrows = std::min(chunk, round_up(p.npos - p0, kTileRows));
      gather_portable(s.bits.data(), p, p0, nrows, s.rows.data(), s.rowpop.data());
      gemm_portable(s.rows.data(), nrows, p0, portable_filters_.data(),
                    static_cast<int64_t>(portable_filters_.size()) / wpf, wpf, ep);
    }
  }
}

}  // namespace ctmq::deploy
