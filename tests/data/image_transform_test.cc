// resize_image (libswscale, bilinear antialiased) against Pillow's
// Image.resize(BILINEAR), what torchvision's transforms run on PIL images,
// on real Fashion-MNIST images: RGB mosaics of 12 images shrunk as the
// evaluation transform and random crops do, and one image enlarged as a
// small crop is. Pillow runs in Debian's /usr/bin/python3 on the same bytes.
#include "ctmq/data/image_transform.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "ctmq/common/error.h"
#include "test_support.h"

namespace ctmq::data {
namespace {

constexpr const char* kPython = "/usr/bin/python3";

// argv: DIR IN_W IN_H OUT_W OUT_H; reads DIR/in.raw (planar CHW, 3 planes),
// writes DIR/out.raw (planar) with Pillow's BILINEAR resize per plane.
const char* kPillowResize = R"(
import sys
from PIL import Image
d, iw, ih, ow, oh = sys.argv[1], *map(int, sys.argv[2:6])
raw = open(d + "/in.raw", "rb").read()
planes = [Image.frombytes("L", (iw, ih), raw[c * iw * ih:(c + 1) * iw * ih]) for c in range(3)]
open(d + "/out.raw", "wb").write(b"".join(p.resize((ow, oh), Image.BILINEAR).tobytes() for p in planes))
)";

// A 3-channel image of height x width tiled with real Fashion-MNIST images
// (each plane a different sequence), so it has edges at every scale.
DecodedImage mosaic(int64_t height, int64_t width) {
  const auto data = ctmq::testing::load_fashion_mnist_train(36);
  const auto images = data.images.contiguous();
  DecodedImage image;
  image.channels = 3;
  image.height = height;
  image.width = width;
  image.pixels.resize(static_cast<size_t>(3 * height * width));
  const uint8_t* src = images.data_ptr<uint8_t>();
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x) {
        const int64_t tile = (c * 12 + (y / 28) * 5 + x / 28) % 36;
        image.pixels[(c * height + y) * width + x] = src[tile * 784 + (y % 28) * 28 + x % 28];
      }
  return image;
}

struct Difference {
  double mean = 0;
  int worst = 0;
};

Difference against_pillow(const DecodedImage& in, int64_t height, int64_t width) {
  ctmq::testing::TempDir dir;
  std::ofstream(dir.path() + "/resize.py") << kPillowResize;
  std::ofstream(dir.path() + "/in.raw", std::ios::binary)
      .write(reinterpret_cast<const char*>(in.pixels.data()),
             static_cast<std::streamsize>(in.pixels.size()));
  const std::string command = std::string(kPython) + " " + dir.path() + "/resize.py " + dir.path() +
                              " " + std::to_string(in.width) + " " + std::to_string(in.height) +
                              " " + std::to_string(width) + " " + std::to_string(height);
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  std::ifstream file(dir.path() + "/out.raw", std::ios::binary);
  const std::string pillow((std::istreambuf_iterator<char>(file)),
                           std::istreambuf_iterator<char>());
  const DecodedImage ours = resize_image(in, height, width);
  EXPECT_EQ(ours.pixels.size(), pillow.size());
  Difference d;
  if (ours.pixels.size() != pillow.size()) return d;
  double total = 0;
  for (size_t i = 0; i < pillow.size(); ++i) {
    const int diff = std::abs(int{ours.pixels[i]} - int{static_cast<uint8_t>(pillow[i])});
    total += diff;
    d.worst = std::max(d.worst, diff);
  }
  d.mean = total / static_cast<double>(pillow.size());
  return d;
}

// Measured on 2026-11-30 (Debian 12: libswscale of FFmpeg 5.1, Pillow 9.4):
// mean 0.11-0.25 grey levels, worst 1-23 (the strong shrink). The bounds
// leave room for other versions; a swapped plane, a one-pixel offset or a
// filter that does not widen when shrinking lands far above them.
TEST(ImageTransform, ResizeMatchesPillowBilinearOnRealImages) {
  struct Case {
    int64_t in_h, in_w, out_h, out_w;
  };
  for (const Case& c : {Case{375, 500, 256, 341},   // evaluation transform's resize
                        Case{290, 270, 224, 224},   // a typical random crop
                        Case{300, 200, 64, 42},     // strong shrink (ctmq-shard --max-side)
                        Case{56, 84, 224, 224}}) {  // a small crop enlarged
    const Difference d = against_pillow(mosaic(c.in_h, c.in_w), c.out_h, c.out_w);
    SCOPED_TRACE(std::to_string(c.in_w) + "x" + std::to_string(c.in_h) + " -> " +
                 std::to_string(c.out_w) + "x" + std::to_string(c.out_h));
    std::printf("resize %lldx%lld -> %lldx%lld: mean %.3f, worst %d grey levels from Pillow\n",
                static_cast<long long>(c.in_w), static_cast<long long>(c.in_h),
                static_cast<long long>(c.out_w), static_cast<long long>(c.out_h), d.mean, d.worst);
    EXPECT_LT(d.mean, 0.5);
    EXPECT_LE(d.worst, 40);
  }
}

TEST(ImageTransform, ResizeKeepsPlanesApartAndIsDeterministic) {
  DecodedImage image = mosaic(90, 120);
  // Plane 1 all white, plane 2 all black: a filter that mixed planes would
  // leak plane 0's mosaic into them.
  std::fill(image.pixels.begin() + 90 * 120, image.pixels.begin() + 2 * 90 * 120, 255);
  std::fill(image.pixels.begin() + 2 * 90 * 120, image.pixels.end(), 0);
  const DecodedImage a = resize_image(image, 37, 53);
  const DecodedImage b = resize_image(image, 37, 53);
  EXPECT_EQ(a.pixels, b.pixels);
  for (int64_t i = 0; i < 37 * 53; ++i) {
    ASSERT_EQ(a.pixels[37 * 53 + i], 255);
    ASSERT_EQ(a.pixels[2 * 37 * 53 + i], 0);
  }
}

// The interleaved path (an RGB24 region read in place and written as GBRP
// planes, what the reader does for JPEG records) against the planar path on
// the cropped planes: the same filter, so equal within libswscale's internal
// rounding (measured: at most 1 grey level, mean under 0.05).
TEST(ImageTransform, InterleavedRegionResizeEqualsPlanarCropResize) {
  const DecodedImage image = mosaic(150, 200);
  std::vector<uint8_t> hwc(image.pixels.size());
  const int64_t plane = 150 * 200;
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t p = 0; p < plane; ++p) hwc[p * 3 + c] = image.pixels[c * plane + p];
  const ImageView interleaved{hwc.data(), 3, 150, 200, true};
  struct Region {
    int64_t top, left, height, width, out_h, out_w;
  };
  for (const Region& r : {Region{10, 20, 97, 131, 64, 64}, Region{0, 0, 150, 200, 150, 200},
                          Region{149, 199, 1, 1, 3, 3}, Region{5, 7, 40, 30, 90, 70}}) {
    const DecodedImage planar =
        resize_image(crop_image(image, r.top, r.left, r.height, r.width), r.out_h, r.out_w);
    const DecodedImage ours =
        resize_region(interleaved, r.top, r.left, r.height, r.width, r.out_h, r.out_w);
    ASSERT_EQ(ours.pixels.size(), planar.pixels.size());
    double total = 0;
    int worst = 0;
    for (size_t i = 0; i < ours.pixels.size(); ++i) {
      const int d = std::abs(int{ours.pixels[i]} - int{planar.pixels[i]});
      total += d;
      worst = std::max(worst, d);
    }
    SCOPED_TRACE("region " + std::to_string(r.top) + "," + std::to_string(r.left));
    EXPECT_LE(worst, 1);
    EXPECT_LT(total / static_cast<double>(ours.pixels.size()), 0.05);
  }
  // A same-size resize is an exact copy, in either layout.
  EXPECT_EQ(resize_region(interleaved, 0, 0, 150, 200, 150, 200).pixels, image.pixels);
  EXPECT_EQ(resize_image(image, 150, 200).pixels, image.pixels);
}

TEST(ImageTransform, ResizeHandlesOnePixelAndRefusesHugeSides) {
  DecodedImage dot;
  dot.channels = 1;
  dot.height = 1;
  dot.width = 1;
  dot.pixels = {200};
  const DecodedImage big = resize_image(dot, 5, 7);
  ASSERT_EQ(big.pixels.size(), 35u);
  for (uint8_t v : big.pixels) EXPECT_EQ(v, 200);
  EXPECT_EQ(resize_image(big, 1, 1).pixels, std::vector<uint8_t>{200});
  const std::string error = ctmq::testing::error_of([&] { resize_image(dot, 20000, 3); });
  EXPECT_NE(error.find("16384"), std::string::npos) << error;
}

}  // namespace
}  // namespace ctmq::data
