#include "ctmq/data/image_file.h"

#include <fstream>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/data/jpeg_image.h"
#include "ctmq/data/png_image.h"

namespace ctmq::data {

ImageFormat image_format_of(const std::string& bytes, const std::string& path) {
  static const std::string kPngSignature("\x89PNG\r\n\x1a\n", 8);
  if (bytes.compare(0, kPngSignature.size(), kPngSignature) == 0) return ImageFormat::kPng;
  if (has_jpeg_signature(bytes)) return ImageFormat::kJpeg;
  throw ctmq::Error("image " + path +
                    " is not a PNG or JPEG file (bad signature); remove it or convert it to PNG "
                    "or JPEG");
}

void read_image_size_bytes(const std::string& bytes, const std::string& path, int64_t& height,
                           int64_t& width) {
  if (image_format_of(bytes, path) == ImageFormat::kPng) {
    read_png_size_bytes(bytes, path, height, width);
  } else {
    read_jpeg_size_bytes(bytes, path, height, width);
  }
}

void read_image_size(const std::string& path, int64_t& height, int64_t& width) {
  std::ifstream in(path, std::ios::binary);
  CTMQ_CHECK(in, "image " << path << " cannot be opened");
  std::string head(8, '\0');
  in.read(head.data(), 8);
  head.resize(static_cast<size_t>(in.gcount()));
  if (image_format_of(head, path) == ImageFormat::kPng) {
    read_png_size(path, height, width);
  } else {
    read_jpeg_size_bytes(read_file(path), path, height, width);
  }
}

DecodedImage decode_image_bytes(const std::string& bytes, const std::string& path,
                                int64_t channels) {
  if (image_format_of(bytes, path) == ImageFormat::kPng) {
    return decode_png_bytes(bytes, path, channels);
  }
  return decode_jpeg_bytes(bytes, path, channels);
}

}  // namespace ctmq::data
