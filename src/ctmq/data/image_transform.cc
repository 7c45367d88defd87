#include "ctmq/data/image_transform.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ctmq/common/error.h"

namespace ctmq::data {

DecodedImage resize_image(const DecodedImage& image, int64_t height, int64_t width) {
  return resize_region(view_of(image), 0, 0, image.height, image.width, height, width);
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

DecodedImage eval_transform(const ImageView& image, int64_t height, int64_t width) {
  const auto side = static_cast<int64_t>(
      std::lround(static_cast<double>(std::max(height, width)) / kEvalCropFraction));
  int64_t h = 0, w = 0;
  shorter_side_size(image.height, image.width, side, h, w);
  const DecodedImage resized = resize_region(image, 0, 0, image.height, image.width, h, w);
  // Python's round(): half to even (std::nearbyint in the default rounding mode).
  const auto top = static_cast<int64_t>(std::nearbyint((h - height) / 2.0));
  const auto left = static_cast<int64_t>(std::nearbyint((w - width) / 2.0));
  return crop_image(resized, top, left, height, width);
}

}  // namespace ctmq::data
