#include "ctmq/data/image_transform.h"

extern "C" {
#include <libavutil/pixfmt.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "ctmq/common/error.h"

namespace ctmq::data {

namespace {
// Bilinear, widened to the scale factor when shrinking (antialiased, like
// PIL's BILINEAR); accurate rounding and the bit-exact C paths, so every
// CPU produces the same bytes (a stage resumed elsewhere sees the same crops).
constexpr int kSwsFlags = SWS_BILINEAR | SWS_ACCURATE_RND | SWS_BITEXACT;
// libswscale's own limit on a side (it refuses larger images).
constexpr int64_t kMaxResizeSide = 16384;
}  // namespace

DecodedImage resize_image(const DecodedImage& image, int64_t height, int64_t width) {
  CTMQ_ASSERT(height > 0 && width > 0 && image.height > 0 && image.width > 0);
  CTMQ_CHECK(height <= kMaxResizeSide && width <= kMaxResizeSide &&
                 image.height <= kMaxResizeSide && image.width <= kMaxResizeSide,
             "cannot resize a " << image.width << " x " << image.height << " image to " << width
                                << " x " << height << ": sides are limited to " << kMaxResizeSide
                                << " px (libswscale)");
  // One context per thread, reused while the sizes repeat (sws_getCachedContext
  // frees and rebuilds it when they change). Each plane is scaled as GRAY8,
  // so every channel count works and planes never mix.
  struct ContextDeleter {
    void operator()(SwsContext* context) const { sws_freeContext(context); }
  };
  thread_local std::unique_ptr<SwsContext, ContextDeleter> context;
  context.reset(sws_getCachedContext(context.release(), static_cast<int>(image.width),
                                     static_cast<int>(image.height), AV_PIX_FMT_GRAY8,
                                     static_cast<int>(width), static_cast<int>(height),
                                     AV_PIX_FMT_GRAY8, kSwsFlags, nullptr, nullptr, nullptr));
  CTMQ_CHECK(context != nullptr, "libswscale cannot resize " << image.width << " x " << image.height
                                                             << " to " << width << " x " << height);
  DecodedImage result;
  result.channels = image.channels;
  result.height = height;
  result.width = width;
  result.pixels.resize(static_cast<size_t>(image.channels * height * width));
  for (int64_t c = 0; c < image.channels; ++c) {
    const uint8_t* source[4] = {image.pixels.data() + c * image.height * image.width};
    const int source_stride[4] = {static_cast<int>(image.width)};
    uint8_t* target[4] = {result.pixels.data() + c * height * width};
    const int target_stride[4] = {static_cast<int>(width)};
    const int rows = sws_scale(context.get(), source, source_stride, 0,
                               static_cast<int>(image.height), target, target_stride);
    CTMQ_CHECK(rows == height, "libswscale resized " << image.width << " x " << image.height
                                                     << " to " << rows << " rows, not " << height);
  }
  return result;
}

void shorter_side_size(int64_t height, int64_t width, int64_t side, int64_t& out_height,
                       int64_t& out_width) {
  const int64_t shorter = std::min(height, width), longer = std::max(height, width);
  const auto other = std::max<int64_t>(
      1, static_cast<int64_t>(static_cast<double>(side) * static_cast<double>(longer) /
                              static_cast<double>(shorter)));
  out_height = height <= width ? side : other;
  out_width = height <= width ? other : side;
}

DecodedImage crop_image(const DecodedImage& image, int64_t top, int64_t left, int64_t height,
                        int64_t width) {
  CTMQ_ASSERT(top >= 0 && left >= 0 && height > 0 && width > 0 && top + height <= image.height &&
              left + width <= image.width);
  DecodedImage out;
  out.channels = image.channels;
  out.height = height;
  out.width = width;
  out.pixels.resize(static_cast<size_t>(image.channels * height * width));
  for (int64_t c = 0; c < image.channels; ++c) {
    for (int64_t y = 0; y < height; ++y) {
      const uint8_t* from = image.pixels.data() + (c * image.height + top + y) * image.width + left;
      std::memcpy(out.pixels.data() + (c * height + y) * width, from, static_cast<size_t>(width));
    }
  }
  return out;
}

void flip_horizontally(DecodedImage& image) {
  for (int64_t row = 0; row < image.channels * image.height; ++row) {
    uint8_t* p = image.pixels.data() + row * image.width;
    std::reverse(p, p + image.width);
  }
}

DecodedImage eval_transform(const DecodedImage& image, int64_t height, int64_t width) {
  const auto side = static_cast<int64_t>(
      std::lround(static_cast<double>(std::max(height, width)) / kEvalCropFraction));
  int64_t h = 0, w = 0;
  shorter_side_size(image.height, image.width, side, h, w);
  const DecodedImage resized =
      h == image.height && w == image.width ? image : resize_image(image, h, w);
  // Python's round(): half to even (std::nearbyint in the default rounding mode).
  const auto top = static_cast<int64_t>(std::nearbyint((h - height) / 2.0));
  const auto left = static_cast<int64_t>(std::nearbyint((w - width) / 2.0));
  return crop_image(resized, top, left, height, width);
}

}  // namespace ctmq::data
