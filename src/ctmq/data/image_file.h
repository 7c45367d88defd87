// One image file of an image folder, PNG or JPEG: the format is decided by
// the file's first bytes (its signature), never by its name, so a .jpg that is
// really a PNG decodes as the PNG it is.
#pragma once

#include <cstdint>
#include <string>

#include "ctmq/data/decoded_image.h"

namespace ctmq::data {

enum class ImageFormat { kPng, kJpeg };

// The format whose signature `bytes` start with. Throws ctmq::Error naming
// `path` when they are neither a PNG's nor a JPEG's.
ImageFormat image_format_of(const std::string& bytes, const std::string& path);

// Width and height from the header of the file `bytes` (its whole contents).
// Throws ctmq::Error naming `path` for a file that is not a PNG or JPEG or
// whose header is corrupt.
void read_image_size_bytes(const std::string& bytes, const std::string& path, int64_t& height,
                           int64_t& width);

// Same, reading the file (a PNG's first bytes only).
void read_image_size(const std::string& path, int64_t& height, int64_t& width);

// Decodes the file `bytes` (PNG or JPEG) to 8-bit planar `channels` (1 or 3);
// the conversions are decode_png's and decode_jpeg's. Throws ctmq::Error
// naming `path` for anything that is not a valid PNG or JPEG.
DecodedImage decode_image_bytes(const std::string& bytes, const std::string& path,
                                int64_t channels);

}  // namespace ctmq::data
