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

}  // namespace ctmq::data
