// Geometric transforms of one decoded image (uint8, planar CHW): the resize
// of ctmq-shard and the evaluation / training crops of the reader
// (docs/shard-format.md, "What the reader delivers"). Each follows
// torchvision's transforms on a PIL image, so a crop here is the crop a
// torchvision reference script would take.
#pragma once

#include <cstdint>

#include "ctmq/data/decoded_image.h"

namespace ctmq::data {

// Evaluation transform ratio: the crop is 0.875 of the resized shorter side
// (torchvision references/classification: Resize(256), CenterCrop(224);
// 224 / 256 = 0.875, the ratio of the original AlexNet/ResNet evaluations).
inline constexpr double kEvalCropFraction = 0.875;

// Bilinear resize, antialiased when shrinking (the filter widens with the
// scale factor, as PIL's BILINEAR does), uint8 to uint8, each channel on its
// own: FFmpeg's libswscale (SWS_BILINEAR | SWS_ACCURATE_RND | SWS_BITEXACT,
// the same bytes whatever the CPU's SIMD). Within a mean of 0.25 grey levels of PIL's
// resize on real images (tests/data/image_transform_test.cc); several times
// faster than LibTorch's antialiased interpolate on float (docs/performance.md,
// "Loader: JPEG images"). REQUIRES: height, width > 0. Throws ctmq::Error for
// a side over 16384 px (libswscale's limit).
DecodedImage resize_image(const DecodedImage& image, int64_t height, int64_t width);

// The same resize of the region rows [top, top + height), columns
// [left, left + width) of `image` (planar or interleaved; an interleaved one
// has 1 or 3 channels) to out_height x out_width planar, reading the region in
// place: a crop costs no copy, and an interleaved RGB image is laid out as
// planes in the same pass (RGB24 -> GBRP). A same-size "resize" copies the
// pixels exactly. REQUIRES: the region inside the image, all sizes > 0.
DecodedImage resize_region(const ImageView& image, int64_t top, int64_t left, int64_t height,
                           int64_t width, int64_t out_height, int64_t out_width);

// torchvision's Resize(side) size rule: the shorter side becomes `side`, the
// longer int(side * long / short) (truncated, as torchvision does).
void shorter_side_size(int64_t height, int64_t width, int64_t side, int64_t& out_height,
                       int64_t& out_width);

// rows [top, top + height), columns [left, left + width); REQUIRES: inside.
DecodedImage crop_image(const DecodedImage& image, int64_t top, int64_t left, int64_t height,
                        int64_t width);

// Mirrors every row in place (torchvision's hflip).
void flip_horizontally(DecodedImage& image);

// The evaluation transform to height x width: resize the shorter side to
// round(max(height, width) / kEvalCropFraction), then the centre crop with
// torchvision's CenterCrop offsets (round((h - height) / 2), half to even
// like Python's round).
DecodedImage eval_transform(const ImageView& image, int64_t height, int64_t width);

}  // namespace ctmq::data
