#include "ctmq/data/png_image.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "png_test_writer.h"
#include "test_support.h"

namespace ctmq::data {
namespace {

struct Case {
  const char* name;
  test::PngSpec spec;
};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  auto add = [&](const char* name, int type, int depth, bool interlaced) {
    test::PngSpec s;
    s.color_type = type;
    s.bit_depth = depth;
    s.interlaced = interlaced;
    cases.push_back({name, s});
  };
  add("gray1", PNG_COLOR_TYPE_GRAY, 1, false);
  add("gray2", PNG_COLOR_TYPE_GRAY, 2, false);
  add("gray4", PNG_COLOR_TYPE_GRAY, 4, false);
  add("gray8", PNG_COLOR_TYPE_GRAY, 8, false);
  add("gray16", PNG_COLOR_TYPE_GRAY, 16, false);
  add("gray_alpha8", PNG_COLOR_TYPE_GRAY_ALPHA, 8, false);
  add("gray_alpha16", PNG_COLOR_TYPE_GRAY_ALPHA, 16, false);
  add("rgb8", PNG_COLOR_TYPE_RGB, 8, false);
  add("rgb16", PNG_COLOR_TYPE_RGB, 16, false);
  add("rgba8", PNG_COLOR_TYPE_RGBA, 8, false);
  add("rgba16", PNG_COLOR_TYPE_RGBA, 16, false);
  add("palette1", PNG_COLOR_TYPE_PALETTE, 1, false);
  add("palette2", PNG_COLOR_TYPE_PALETTE, 2, false);
  add("palette4", PNG_COLOR_TYPE_PALETTE, 4, false);
  add("palette8", PNG_COLOR_TYPE_PALETTE, 8, false);
  add("gray1_interlaced", PNG_COLOR_TYPE_GRAY, 1, true);
  add("gray16_interlaced", PNG_COLOR_TYPE_GRAY, 16, true);
  add("rgb8_interlaced", PNG_COLOR_TYPE_RGB, 8, true);
  add("rgba16_interlaced", PNG_COLOR_TYPE_RGBA, 16, true);
  add("palette4_interlaced", PNG_COLOR_TYPE_PALETTE, 4, true);
  return cases;
}

TEST(PngImage, EveryColourTypeBitDepthAndInterlacingDecodes) {
  ctmq::testing::TempDir dir;
  unsigned seed = 1;
  for (const Case& c : all_cases()) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.path() + "/" + c.name + ".png";
    const test::PngTruth truth = test::write_test_png(path, c.spec, seed++);
    const int tolerance = truth.exact ? 0 : 1;
    int64_t h = 0, w = 0;
    read_png_size(path, h, w);
    EXPECT_EQ(h, c.spec.height);
    EXPECT_EQ(w, c.spec.width);
    const size_t plane = static_cast<size_t>(c.spec.width) * c.spec.height;

    DecodedImage rgb = decode_png(path, 3);
    ASSERT_EQ(rgb.height, c.spec.height);
    ASSERT_EQ(rgb.width, c.spec.width);
    ASSERT_EQ(rgb.pixels.size(), plane * 3);
    for (size_t p = 0; p < plane; ++p) {
      for (int ch = 0; ch < 3; ++ch) {
        ASSERT_NEAR(rgb.pixels[ch * plane + p], truth.rgb[p * 3 + ch], tolerance)
            << "pixel " << p << " channel " << ch;
      }
    }
    DecodedImage gray = decode_png(path, 1);
    ASSERT_EQ(gray.pixels.size(), plane);
    for (size_t p = 0; p < plane; ++p) {
      const uint8_t* t = &truth.rgb[p * 3];
      const int expected =
          truth.colour ? (299 * t[0] + 587 * t[1] + 114 * t[2] + 500) / 1000 : t[0];
      ASSERT_NEAR(gray.pixels[p], expected, truth.colour ? tolerance + 1 : tolerance)
          << "pixel " << p;
    }
  }
}

TEST(PngImage, SixteenBitRoundsToNearest) {
  // 16-bit samples v map to round(v * 255 / 65535) within one step.
  ctmq::testing::TempDir dir;
  test::PngSpec spec;
  spec.color_type = PNG_COLOR_TYPE_GRAY;
  spec.bit_depth = 16;
  spec.width = 64;
  spec.height = 64;
  auto truth = test::write_test_png(dir.path() + "/g.png", spec, 99);
  DecodedImage image = decode_png(dir.path() + "/g.png", 1);
  int exact = 0;
  for (size_t p = 0; p < image.pixels.size(); ++p) exact += image.pixels[p] == truth.rgb[p * 3];
  EXPECT_GT(exact, static_cast<int>(image.pixels.size() * 9 / 10));
}

TEST(PngImage, NotAPngIsAClearError) {
  ctmq::testing::TempDir dir;
  const std::string path = dir.path() + "/fake.png";
  std::ofstream(path) << "GIF89a this is not a png";
  try {
    decode_png(path, 3);
    FAIL() << "no error";
  } catch (const ctmq::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not a PNG"), std::string::npos) << e.what();
  }
  int64_t h, w;
  EXPECT_THROW(read_png_size(path, h, w), ctmq::Error);
}

TEST(PngImage, TruncatedPngIsAClearError) {
  ctmq::testing::TempDir dir;
  const std::string path = dir.path() + "/cut.png";
  test::PngSpec spec;
  spec.width = 40;
  spec.height = 40;
  test::write_test_png(path, spec, 5);
  std::string bytes = ctmq::read_file(path);
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size() / 2);
  try {
    decode_png(path, 3);
    FAIL() << "no error";
  } catch (const ctmq::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not a valid PNG"), std::string::npos) << e.what();
  }
}

TEST(PngImage, AHugeClaimedSizeIsRefusedWithoutAllocating) {
  // A valid small PNG whose IHDR (with a fixed-up CRC) claims 100000x100000.
  ctmq::testing::TempDir dir;
  const std::string path = dir.path() + "/huge.png";
  test::write_test_png(path, test::PngSpec{}, 8);
  std::string bytes = ctmq::read_file(path);
  auto put_be32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<char>(v >> (24 - 8 * i));
  };
  put_be32(16, 100000);
  put_be32(20, 100000);
  put_be32(
      29, static_cast<uint32_t>(::crc32(0, reinterpret_cast<const Bytef*>(bytes.data() + 12), 17)));
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
  try {
    decode_png(path, 3);
    FAIL() << "no error";
  } catch (const ctmq::Error& e) {
    EXPECT_NE(std::string(e.what()).find("too large"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ctmq::data
