// PNG decoding with libpng (the only file that includes <png.h> in the
// library). Every valid PNG loads: gray, gray+alpha, RGB, RGBA, palette,
// 1/2/4/8/16-bit, interlaced.
#pragma once

#include <cstdint>
#include <string>

#include "ctmq/data/decoded_image.h"

namespace ctmq::data {

// Width and height from the PNG header (reads the file's first bytes only).
// Throws ctmq::Error naming `path` when it is not a PNG.
void read_png_size(const std::string& path, int64_t& height, int64_t& width);

// Same, from the file's bytes (at least its first 33) already in memory.
void read_png_size_bytes(const std::string& bytes, const std::string& path, int64_t& height,
                         int64_t& width);

// Decodes `path` to 8-bit `channels` (1 or 3). Conversions, as PIL's
// convert() does for torchvision: palette -> RGB; 1/2/4-bit gray -> 8-bit;
// 16-bit -> 8-bit by rounding (v * 255 / 65535); alpha and transparency are
// dropped; gray -> RGB replicates; RGB -> gray is (299 R + 587 G + 114 B) / 1000
// rounded. Throws ctmq::Error naming `path` for anything that is not a valid
// PNG (bad signature, truncated, bad CRC).
DecodedImage decode_png(const std::string& path, int64_t channels);

// Same, from bytes already in memory (`path` only names it in errors).
DecodedImage decode_png_bytes(const std::string& bytes, const std::string& path, int64_t channels);

}  // namespace ctmq::data
