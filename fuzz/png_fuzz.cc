// Fuzzes PNG decoding (data/png_image.cc): the header probe that sizes an
// image folder and the full decode, from a file and from memory.
// Input: one flag byte (bit 0: decode to 1 channel, else 3), then the file.
#include <string>

#include "ctmq/data/png_image.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int64_t channels = (data[0] & 1) ? 1 : 3;
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string path = ctmq::fuzz::scratch().write("image.png", bytes);
  ctmq::fuzz::expect_errors_only([&] {
    int64_t height = 0, width = 0;
    ctmq::data::read_png_size(path, height, width);
  });
  ctmq::fuzz::expect_errors_only([&] {
    ctmq::data::DecodedImage image = ctmq::data::decode_png_bytes(bytes, path, channels);
    // The decoder's contract: planar CHW of exactly the reported size.
    if (image.pixels.size() != static_cast<size_t>(image.channels * image.height * image.width) ||
        image.channels != channels) {
      __builtin_trap();
    }
  });
  return 0;
}
