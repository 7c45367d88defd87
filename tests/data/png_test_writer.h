// Writes real PNG files with libpng for the decoder's tests: every colour
// type, bit depth and interlacing that a valid PNG may use.
#pragma once

#include <png.h>

#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace ctmq::data::test {

struct PngSpec {
  int color_type = PNG_COLOR_TYPE_RGB;  // PNG_COLOR_TYPE_*
  int bit_depth = 8;
  bool interlaced = false;
  int width = 7;
  int height = 5;
};

// What a decoder must produce: per pixel an 8-bit RGB value (gray sources
// have r == g == b), before any channel conversion; `exact` is false where
// 16-bit rounding allows +-1.
struct PngTruth {
  std::vector<uint8_t> rgb;  // interleaved, width*height*3
  bool colour = false;
  bool exact = true;
};

inline int samples_per_pixel(int color_type) {
  switch (color_type) {
    case PNG_COLOR_TYPE_GRAY:
    case PNG_COLOR_TYPE_PALETTE:
      return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
      return 2;
    case PNG_COLOR_TYPE_RGB:
      return 3;
    default:
      return 4;
  }
}

// Writes `path` with random content from `seed`; returns the expected pixels.
inline PngTruth write_test_png(const std::string& path, const PngSpec& spec, unsigned seed) {
  std::mt19937 rng(seed);
  const int spp = samples_per_pixel(spec.color_type);
  const int max_value = (1 << spec.bit_depth) - 1;
  PngTruth truth;
  truth.colour = spec.color_type == PNG_COLOR_TYPE_RGB || spec.color_type == PNG_COLOR_TYPE_RGBA ||
                 spec.color_type == PNG_COLOR_TYPE_PALETTE;
  truth.exact = spec.bit_depth != 16;
  std::vector<png_color> palette(1 << std::min(spec.bit_depth, 8));
  for (auto& c : palette) {
    c.red = static_cast<png_byte>(rng() & 255);
    c.green = static_cast<png_byte>(rng() & 255);
    c.blue = static_cast<png_byte>(rng() & 255);
  }
  // Samples per pixel, unpacked.
  std::vector<std::vector<int>> samples(spec.width * spec.height, std::vector<int>(spp));
  truth.rgb.resize(spec.width * spec.height * 3);
  for (int p = 0; p < spec.width * spec.height; ++p) {
    for (int s = 0; s < spp; ++s) {
      samples[p][s] = static_cast<int>(rng() % (spec.color_type == PNG_COLOR_TYPE_PALETTE
                                                    ? palette.size()
                                                    : static_cast<size_t>(max_value) + 1));
    }
    auto to8 = [&](int v) { return static_cast<uint8_t>((v * 255 + max_value / 2) / max_value); };
    uint8_t* out = &truth.rgb[p * 3];
    if (spec.color_type == PNG_COLOR_TYPE_PALETTE) {
      const png_color& c = palette[samples[p][0]];
      out[0] = c.red, out[1] = c.green, out[2] = c.blue;
    } else if (truth.colour) {
      out[0] = to8(samples[p][0]), out[1] = to8(samples[p][1]), out[2] = to8(samples[p][2]);
    } else {
      out[0] = out[1] = out[2] = to8(samples[p][0]);
    }
  }
  // Pack rows: big-endian 16-bit samples, MSB-first sub-byte samples.
  const int bits_per_pixel = spp * spec.bit_depth;
  const size_t row_bytes = (static_cast<size_t>(spec.width) * bits_per_pixel + 7) / 8;
  std::vector<std::vector<png_byte>> rows(spec.height, std::vector<png_byte>(row_bytes, 0));
  for (int y = 0; y < spec.height; ++y) {
    for (int x = 0; x < spec.width; ++x) {
      for (int s = 0; s < spp; ++s) {
        const int v = samples[y * spec.width + x][s];
        const size_t bit = (static_cast<size_t>(x) * spp + s) * spec.bit_depth;
        if (spec.bit_depth == 16) {
          rows[y][bit / 8] = static_cast<png_byte>(v >> 8);
          rows[y][bit / 8 + 1] = static_cast<png_byte>(v & 255);
        } else {
          rows[y][bit / 8] |= static_cast<png_byte>(v << (8 - spec.bit_depth - bit % 8));
        }
      }
    }
  }
  FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) throw std::runtime_error("cannot write " + path);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    std::fclose(file);
    throw std::runtime_error("libpng failed writing " + path);
  }
  png_init_io(png, file);
  png_set_IHDR(png, info, spec.width, spec.height, spec.bit_depth, spec.color_type,
               spec.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (spec.color_type == PNG_COLOR_TYPE_PALETTE) {
    png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
  }
  std::vector<png_bytep> row_pointers;
  for (auto& r : rows) row_pointers.push_back(r.data());
  png_set_rows(png, info, row_pointers.data());
  png_write_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
  png_destroy_write_struct(&png, &info);
  std::fclose(file);
  return truth;
}

}  // namespace ctmq::data::test
