#include "ctmq/data/png_image.h"

#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/byte_coding.h"
#include "ctmq/common/error.h"

namespace ctmq::data {
namespace {

// libpng reports errors through a callback that must not return: it records
// the message here and longjmps back to decode(), which throws. Only plain
// data lives between setjmp and longjmp.
struct PngContext {
  const std::string* bytes = nullptr;
  size_t offset = 0;
  char message[256] = {0};
};

void on_error(png_structp png, png_const_charp message) {
  auto* context = static_cast<PngContext*>(png_get_error_ptr(png));
  std::snprintf(context->message, sizeof(context->message), "%s", message);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

void on_read(png_structp png, png_bytep out, png_size_t size) {
  auto* context = static_cast<PngContext*>(png_get_io_ptr(png));
  if (context->offset + size > context->bytes->size()) {
    png_error(png, "unexpected end of file (truncated PNG)");
  }
  std::memcpy(out, context->bytes->data() + context->offset, size);
  context->offset += size;
}

void check_signature(const std::string& bytes, const std::string& path) {
  CTMQ_CHECK(
      bytes.size() >= 8 && png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) == 0,
      "image " << path
               << " is not a PNG file (bad signature); remove it or convert it "
                  "to PNG");
}

// Decodes into interleaved 8-bit rows with 1..4 channels (alpha kept).
// Returns false (with context.message set) on a libpng error.
bool decode_interleaved(PngContext& context, std::vector<uint8_t>& pixels, png_uint_32& width,
                        png_uint_32& height, int& source_channels) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &context, &on_error, &on_warning);
  if (!png) {
    std::snprintf(context.message, sizeof(context.message), "out of memory");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  std::vector<png_bytep> rows;
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    return false;
  }
  png_set_read_fn(png, &context, &on_read);
  png_read_info(png, info);
  const int color_type = png_get_color_type(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (bit_depth == 16) png_set_scale_16(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  width = png_get_image_width(png, info);
  height = png_get_image_height(png, info);
  source_channels = png_get_channels(png, info);
  const size_t row_bytes = png_get_rowbytes(png, info);
  // Bounded memory: a (possibly hostile) header may claim a huge image.
  if (static_cast<double>(row_bytes) * height > double{1 << 30}) {
    png_error(png, "image too large (over 1 GiB decoded)");
  }
  pixels.resize(row_bytes * height);
  rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) rows[y] = pixels.data() + y * row_bytes;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

}  // namespace

void read_png_size(const std::string& path, int64_t& height, int64_t& width) {
  std::ifstream in(path, std::ios::binary);
  CTMQ_CHECK(in, "image " << path << " cannot be opened");
  std::string bytes(33, '\0');  // signature + IHDR chunk
  in.read(bytes.data(), 33);
  bytes.resize(static_cast<size_t>(in.gcount()));
  read_png_size_bytes(bytes, path, height, width);
}

void read_png_size_bytes(const std::string& bytes, const std::string& path, int64_t& height,
                         int64_t& width) {
  check_signature(bytes, path);
  CTMQ_CHECK(bytes.size() >= 33 && bytes.compare(12, 4, "IHDR") == 0,
             "image " << path << " is not a valid PNG (no IHDR chunk)");
  width = decode_be32(bytes.data() + 16);
  height = decode_be32(bytes.data() + 20);
}

DecodedImage decode_png_bytes(const std::string& bytes, const std::string& path, int64_t channels) {
  CTMQ_ASSERT(channels == 1 || channels == 3);
  check_signature(bytes, path);
  PngContext context;
  context.bytes = &bytes;
  std::vector<uint8_t> interleaved;
  png_uint_32 width = 0, height = 0;
  int source_channels = 0;
  CTMQ_CHECK(decode_interleaved(context, interleaved, width, height, source_channels),
             "image " << path << " is not a valid PNG (libpng: " << context.message
                      << "); remove or replace it");
  DecodedImage image;
  image.channels = channels;
  image.height = height;
  image.width = width;
  const size_t plane = static_cast<size_t>(width) * height;
  image.pixels.resize(plane * channels);
  const bool colour = source_channels >= 3;  // RGB or RGBA
  const uint8_t* in = interleaved.data();
  uint8_t* out = image.pixels.data();
  for (size_t p = 0; p < plane; ++p, in += source_channels) {
    if (channels == 3) {
      out[p] = in[0];
      out[plane + p] = colour ? in[1] : in[0];
      out[2 * plane + p] = colour ? in[2] : in[0];
    } else if (colour) {
      out[p] = static_cast<uint8_t>((299 * in[0] + 587 * in[1] + 114 * in[2] + 500) / 1000);
    } else {
      out[p] = in[0];
    }
  }
  return image;
}

DecodedImage decode_png(const std::string& path, int64_t channels) {
  return decode_png_bytes(read_file(path), path, channels);
}

}  // namespace ctmq::data
