// resize_region (image_transform.h) with FFmpeg's libswscale: the only file
// that includes it. Left out of a build configured without libswscale
// (CTMQ_SWSCALE, cmake/ctmq_features.cmake), which compiles
// image_resize_unavailable.cc instead.
#include "ctmq/data/image_transform.h"

extern "C" {
#include <libavutil/pixfmt.h>
#include <libswscale/swscale.h>
}

#include <memory>

#include "ctmq/common/error.h"

namespace ctmq::data {

namespace {
// Bilinear, widened to the scale factor when shrinking (antialiased, like
// PIL's BILINEAR); accurate rounding and the bit-exact C paths, so every
// CPU produces the same bytes (a stage resumed elsewhere sees the same crops).
constexpr int kSwsFlags =
    SWS_BILINEAR | SWS_ACCURATE_RND | SWS_BITEXACT | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP;
// libswscale's own limit on a side (it refuses larger images).
constexpr int64_t kMaxResizeSide = 16384;
}  // namespace

DecodedImage resize_region(const ImageView& image, int64_t top, int64_t left, int64_t height,
                           int64_t width, int64_t out_height, int64_t out_width) {
  CTMQ_ASSERT(out_height > 0 && out_width > 0 && height > 0 && width > 0 && top >= 0 && left >= 0 &&
              top + height <= image.height && left + width <= image.width);
  CTMQ_CHECK(out_height <= kMaxResizeSide && out_width <= kMaxResizeSide &&
                 height <= kMaxResizeSide && width <= kMaxResizeSide,
             "cannot resize a " << width << " x " << height << " image to " << out_width << " x "
                                << out_height << ": sides are limited to " << kMaxResizeSide
                                << " px (libswscale)");
  // An interleaved RGB image is read as RGB24 and written as planar GBRP in
  // the same pass; everything else plane by plane as GRAY8, so any channel
  // count works and planes never mix. One context per thread and per kind,
  // reused while the sizes repeat (sws_getCachedContext rebuilds it when they
  // change).
  struct ContextDeleter {
    void operator()(SwsContext* context) const { sws_freeContext(context); }
  };
  const bool rgb24 = image.interleaved && image.channels == 3;
  CTMQ_ASSERT(!image.interleaved || image.channels == 1 || image.channels == 3);
  thread_local std::unique_ptr<SwsContext, ContextDeleter> gray_context, rgb_context;
  auto& context = rgb24 ? rgb_context : gray_context;
  context.reset(
      sws_getCachedContext(context.release(), static_cast<int>(width), static_cast<int>(height),
                           rgb24 ? AV_PIX_FMT_RGB24 : AV_PIX_FMT_GRAY8, static_cast<int>(out_width),
                           static_cast<int>(out_height), rgb24 ? AV_PIX_FMT_GBRP : AV_PIX_FMT_GRAY8,
                           kSwsFlags, nullptr, nullptr, nullptr));
  CTMQ_CHECK(context != nullptr, "libswscale cannot resize " << width << " x " << height << " to "
                                                             << out_width << " x " << out_height);
  DecodedImage result;
  result.channels = image.channels;
  result.height = out_height;
  result.width = out_width;
  result.pixels.resize(static_cast<size_t>(image.channels * out_height * out_width));
  const int64_t plane = out_height * out_width;
  auto scale = [&](const uint8_t* const source[4], const int source_stride[4],
                   uint8_t* const target[4], const int target_stride[4]) {
    const int rows = sws_scale(context.get(), source, source_stride, 0, static_cast<int>(height),
                               target, target_stride);
    CTMQ_CHECK(rows == out_height, "libswscale resized " << width << " x " << height << " to "
                                                         << rows << " rows, not " << out_height);
  };
  const int out_stride = static_cast<int>(out_width);
  if (rgb24) {
    const uint8_t* source[4] = {image.pixels + (top * image.width + left) * 3};
    const int source_stride[4] = {static_cast<int>(image.width * 3)};
    uint8_t* base = result.pixels.data();
    uint8_t* target[4] = {base + plane, base + 2 * plane, base};  // GBRP: G, B, R planes
    const int target_stride[4] = {out_stride, out_stride, out_stride};
    scale(source, source_stride, target, target_stride);
    return result;
  }
  for (int64_t c = 0; c < image.channels; ++c) {
    // Planar: plane c's region; interleaved gray: the one plane.
    const uint8_t* source[4] = {image.pixels + (c * image.height + top) * image.width + left};
    const int source_stride[4] = {static_cast<int>(image.width)};
    uint8_t* target[4] = {result.pixels.data() + c * plane};
    const int target_stride[4] = {out_stride};
    scale(source, source_stride, target, target_stride);
  }
  return result;
}

}  // namespace ctmq::data
