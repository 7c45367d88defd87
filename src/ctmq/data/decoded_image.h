// The result of decoding one image file (PNG or JPEG).
#pragma once

#include <cstdint>
#include <vector>

namespace ctmq::data {

struct DecodedImage {
  int64_t channels = 0;  // as requested: 1 or 3
  int64_t height = 0;
  int64_t width = 0;
  std::vector<uint8_t> pixels;  // planar CHW, uint8, channels * height * width bytes
};

// Read-only decoded pixels in either layout: planar CHW (a DecodedImage) or
// the decoder's interleaved HWC (decode_jpeg_interleaved), so that a region
// can be resized without first copying the whole image into planes.
struct ImageView {
  const uint8_t* pixels = nullptr;
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
  bool interleaved = false;  // HWC when true, CHW when false
};

inline ImageView view_of(const DecodedImage& image) {
  return {image.pixels.data(), image.channels, image.height, image.width, false};
}

}  // namespace ctmq::data
