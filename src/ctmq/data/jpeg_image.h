// JPEG decoding with libjpeg-turbo's TurboJPEG API (the only file that
// includes <turbojpeg.h> in the library). Optional at configure (CTMQ_JPEG,
// docs/building.md): a build without it compiles jpeg_image_unavailable.cc,
// whose functions throw ctmq::Error naming the option and the package. Baseline and progressive
// files load, in every colour space libjpeg reads: gray, YCbCr (and RGB), CMYK and YCCK.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ctmq/data/decoded_image.h"

namespace ctmq::data {

// True when `bytes` start with a JPEG's SOI marker and the next marker's
// 0xFF (FF D8 FF). Available in every build, with or without JPEG decoding.
inline bool has_jpeg_signature(const std::string& bytes) {
  return bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
         static_cast<unsigned char>(bytes[1]) == 0xD8 &&
         static_cast<unsigned char>(bytes[2]) == 0xFF;
}

// Width and height from the JPEG's frame header (the whole file's bytes, as
// markers such as EXIF may come before it). Throws ctmq::Error naming `path`
// when the bytes are not a JPEG or the header is corrupt.
void read_jpeg_size_bytes(const std::string& bytes, const std::string& path, int64_t& height,
                          int64_t& width);

// Decodes a JPEG to 8-bit `channels` (1 or 3), as PIL's convert() does for
// torchvision: gray -> RGB replicates; RGB -> gray is
// (299 R + 587 G + 114 B) / 1000 rounded (the PNG decoder's formula, applied
// to the decoded RGB); CMYK and YCCK -> RGB with Adobe's inverted-CMYK
// convention (the stored values are 255 - ink, which is what Photoshop and
// Pillow write): R = round(C' * K' / 255) for stored C', K', and likewise G
// from M', B from Y' (Pillow's own CMYK -> RGB gives the same bytes). DCT and
// chroma upsampling are libjpeg's defaults (accurate integer DCT, smooth
// upsampling), as in Pillow. EXIF orientation is ignored (docs/choices.md,
// Data): the pixels come out in stored order, as torchvision's ImageFolder
// loader gives them.
// Throws ctmq::Error naming `path` for anything that is not a complete, valid
// JPEG: bad signature, corrupt markers or entropy-coded data, truncated files
// (libjpeg-turbo's warnings are errors here), or an image over 1 GiB decoded.
DecodedImage decode_jpeg_bytes(const std::string& bytes, const std::string& path, int64_t channels);

// Same, reading the file.
DecodedImage decode_jpeg(const std::string& path, int64_t channels);

// decode_jpeg_bytes's pixels left in the decoder's interleaved HWC layout,
// which saves the copy into planes, into `pixels` (resized; its capacity is
// reused across calls). Only where the conversion is libjpeg-turbo's own and
// equals decode_jpeg_bytes's: an RGB or gray JPEG to 3 channels (gray is
// replicated), a gray JPEG to 1. Returns false, decoding nothing, for the
// others (CMYK / YCCK, colour to 1 channel): use decode_jpeg_bytes. Errors as
// decode_jpeg_bytes.
bool decode_jpeg_interleaved(const std::string& bytes, const std::string& path, int64_t channels,
                             std::vector<uint8_t>& pixels, int64_t& height, int64_t& width);

// Encodes `image` (1 or 3 planar channels) as a baseline JPEG at `quality`
// (1..100) with libjpeg-turbo's tjCompress2: gray for 1 channel, YCbCr 4:2:0
// for 3 (Pillow's defaults for quality < 100). Throws ctmq::Error naming
// `what` if libjpeg-turbo fails.
std::string encode_jpeg(const DecodedImage& image, int quality, const std::string& what);

}  // namespace ctmq::data
