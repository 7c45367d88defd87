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
// per 64-bit lane; described in binary_conv_layout.h.
//
// Signed dots: padded taps are bit 0 (+1), so K - 2 * popcount(a ^ w) counts
// them; the sum of w over the padded taps is subtracted again. That sum
// depends only on which taps are padded, i.e. on the position's border
// class, and is tabulated per call (classes x out_channels).
// Unsigned dots: sum a * w = popcount(a & ~w) - popcount(a & w)
//   = 2 * popcount(a & ~w) - popcount(a); padded taps are 0 and need nothing.
//
// Files: binary_conv_layout.h (Plan, Epilogue, constants, the lane layout),
// binary_pack.{h,cc} (steps 1 and 2), binary_kernel_portable.{h,cc} and
// binary_kernel_avx2.{h,cc} (step 3 and the epilogue); this file holds the
// filter re-layouts, the border correction and forward()'s dispatch.
#include "ctmq/deploy/binary_conv.h"

#include <algorithm>
#include <cstring>

#include "ctmq/common/error.h"
#include "ctmq/deploy/binary_conv_layout.h"
#include "ctmq/deploy/binary_kernel_avx2.h"
#include "ctmq/deploy/binary_kernel_portable.h"
#include "ctmq/deploy/binary_pack.h"

namespace ctmq::deploy {
namespace {

using namespace detail;  // this library's own internals (binary_conv_layout.h and friends)

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

  // Lane layout (binary_conv_layout.h): groups of four filters, word w's
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
    const ByteGather gather = select_byte_gather(g.kernel, tap_bytes);
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
