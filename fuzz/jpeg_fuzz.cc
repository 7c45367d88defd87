// Fuzzes JPEG decoding (data/jpeg_image.cc) and the signature dispatch of
// image folders (data/image_file.cc): the header probe that sizes a folder and
// the full decode.
// Input: one flag byte (bit 0: decode to 1 channel, else 3), then the file.
#include <string>

#include "ctmq/data/image_file.h"
#include "ctmq/data/jpeg_image.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int64_t channels = (data[0] & 1) ? 1 : 3;
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string path = ctmq::fuzz::scratch().write("image.jpg", bytes);
  ctmq::fuzz::expect_errors_only([&] {
    int64_t height = 0, width = 0;
    ctmq::data::read_jpeg_size_bytes(bytes, path, height, width);
  });
  ctmq::fuzz::expect_errors_only([&] {
    int64_t height = 0, width = 0;
    ctmq::data::read_image_size(path, height, width);
  });
  ctmq::fuzz::expect_errors_only([&] {
    ctmq::data::DecodedImage image = ctmq::data::decode_image_bytes(bytes, path, channels);
    // The decoder's contract: planar CHW of exactly the reported size.
    if (image.pixels.size() != static_cast<size_t>(image.channels * image.height * image.width) ||
        image.channels != channels) {
      __builtin_trap();
    }
  });
  return 0;
}
