// JPEG decoding (data/jpeg_image.h) against Pillow, the decoder behind
// torchvision's ImageFolder: real Fashion-MNIST images are written as JPEG by
// Debian's Pillow (/usr/bin/python3) in every colour space and coding mode a
// data set holds (gray, YCbCr 4:2:0 and 4:4:4, CMYK, YCCK; baseline and
// progressive; qualities 50-95; 28x28 and resized to 64x48), Pillow writes its
// own decode of each file, and ctmq's decode must match it. Also: truncated
// and corrupt files are refused by name, and a mixed PNG + JPEG image folder
// reads through open_image_folder_source.
#include "ctmq/data/jpeg_image.h"

#include <gtest/gtest.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/data/image_file.h"
#include "ctmq/data/record_source.h"
#include "test_support.h"

namespace ctmq::data {
namespace {
namespace fs = std::filesystem;
using ctmq::testing::error_of;

constexpr const char* kPython = "/usr/bin/python3";  // Debian's, with python3-pil

// Reads DIR/mnist.raw (8 Fashion-MNIST images, 28x28 uint8 each) and
// DIR/ycck.jpg (written by TurboJPEG: Pillow cannot write YCCK), writes one
// JPEG per case and, for every *.jpg, Pillow's decode as NAME.rgb
// (convert("RGB")) and NAME.l (convert("RGB").convert("L"), what torchvision's
// Grayscale sees). Also writes the mixed image folder DIR/folder. Fails
// (non-zero exit) if a file is not in the colour space or mode its name says.
const char* kScript = R"(
import os, sys
from PIL import Image
out = sys.argv[1]
raw = open(os.path.join(out, "mnist.raw"), "rb").read()
im = [Image.frombytes("L", (28, 28), raw[i * 784:(i + 1) * 784]) for i in range(8)]
rgb = Image.merge("RGB", im[0:3])
cmyk = Image.merge("CMYK", im[3:7])
big = lambda x: x.resize((64, 48), Image.BILINEAR)  # W x H
cases = {
    "gray_q90": (im[0], dict(quality=90)),
    "gray_q50": (im[1], dict(quality=50)),
    "gray_progressive_q75": (im[2], dict(quality=75, progressive=True)),
    "gray_64x48_q90": (big(im[3]), dict(quality=90)),
    "rgb_q90": (rgb, dict(quality=90)),
    "rgb_q50": (rgb, dict(quality=50)),
    "rgb_444_q95": (rgb, dict(quality=95, subsampling=0)),
    "rgb_progressive_q75": (rgb, dict(quality=75, progressive=True)),
    "rgb_64x48_q50": (big(rgb), dict(quality=50)),
    "rgb_64x48_progressive_q90": (big(rgb), dict(quality=90, progressive=True)),
    "cmyk_q90": (cmyk, dict(quality=90)),
    "cmyk_64x48_progressive_q50": (big(cmyk), dict(quality=50, progressive=True)),
}
for name, (image, options) in cases.items():
    image.save(os.path.join(out, name + ".jpg"), **options)
for f in sorted(os.listdir(out)):
    if not f.endswith(".jpg"):
        continue
    image = Image.open(os.path.join(out, f))
    image.load()
    want = "L" if f.startswith("gray") else "CMYK" if f[:4] in ("cmyk", "ycck") else "RGB"
    assert image.format == "JPEG" and image.mode == want, (f, image.mode)
    assert ("progressive" in f) == bool(image.info.get("progressive")), f
    base = os.path.join(out, f[:-4])
    open(base + ".rgb", "wb").write(image.convert("RGB").tobytes())
    open(base + ".l", "wb").write(image.convert("RGB").convert("L").tobytes())
# Mixed folder: class a holds a PNG, a gray JPEG and an RGB .JPEG; class b a
# .jpg that is really a PNG and a 64x48 JPEG; plus a file that is no image.
folder = os.path.join(out, "folder")
for c in ("a", "b"):
    os.makedirs(os.path.join(folder, c))
im[0].save(os.path.join(folder, "a", "0.png"))
im[1].save(os.path.join(folder, "a", "1.jpg"), quality=90)
rgb.save(os.path.join(folder, "a", "2.JPEG"), format="JPEG", quality=90)
im[4].save(os.path.join(folder, "b", "3.jpg"), format="PNG")
big(im[5]).save(os.path.join(folder, "b", "4.jpeg"), quality=90)
open(os.path.join(folder, "b", "notes.txt"), "w").write("not an image")
)";

std::string read_bytes(const std::string& path) { return read_file(path); }

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// The 8 images as 4 inverted-CMYK planes, compressed by TurboJPEG from
// packed CMYK: it writes YCCK (an Adobe-marked, colour-transformed JPEG).
void write_ycck(const std::string& path, const std::vector<uint8_t>& images) {
  std::vector<uint8_t> packed(28 * 28 * 4);
  for (size_t p = 0; p < 28 * 28; ++p)
    for (size_t c = 0; c < 4; ++c) packed[p * 4 + c] = images[(4 + c) * 784 + p];
  tjhandle handle = tjInitCompress();
  ASSERT_NE(handle, nullptr);
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  ASSERT_EQ(
      tjCompress2(handle, packed.data(), 28, 0, 28, TJPF_CMYK, &jpeg, &size, TJSAMP_420, 90, 0), 0)
      << tjGetErrorStr2(handle);
  write_bytes(path, std::string(reinterpret_cast<char*>(jpeg), size));
  tjFree(jpeg);
  tjDestroy(handle);
}

class JpegImageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ctmq::testing::TempDir;
    const auto data = ctmq::testing::load_fashion_mnist_train(8).images.contiguous();
    const auto* p = data.data_ptr<uint8_t>();
    images_.assign(p, p + data.numel());
    write_bytes(dir() + "/mnist.raw", std::string(images_.begin(), images_.end()));
    write_ycck(dir() + "/ycck_q90.jpg", images_);
    write_bytes(dir() + "/make.py", kScript);
    const std::string command =
        std::string(kPython) + " " + dir() + "/make.py " + dir() + " > " + dir() + "/make.log 2>&1";
    script_ok_ = std::system(command.c_str()) == 0;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(script_ok_) << kPython << " (with PIL, Debian's python3-pil) failed to write the "
                            << "JPEG files:\n"
                            << read_bytes(dir() + "/make.log");
  }
  static std::string dir() { return dir_->path(); }

  static ctmq::testing::TempDir* dir_;
  static std::vector<uint8_t> images_;  // [8, 28, 28]
  static bool script_ok_;
};
ctmq::testing::TempDir* JpegImageTest::dir_ = nullptr;
std::vector<uint8_t> JpegImageTest::images_;
bool JpegImageTest::script_ok_ = false;

// Max |ctmq - Pillow| over all bytes of the planar `image` against Pillow's
// interleaved `oracle`.
int max_difference(const DecodedImage& image, const std::string& oracle) {
  const size_t plane = static_cast<size_t>(image.height * image.width);
  EXPECT_EQ(oracle.size(), plane * image.channels);
  int worst = 0;
  for (size_t p = 0; p < plane && (p + 1) * image.channels <= oracle.size(); ++p) {
    for (int64_t c = 0; c < image.channels; ++c) {
      const int want = static_cast<uint8_t>(oracle[p * image.channels + c]);
      worst = std::max(worst, std::abs(image.pixels[c * plane + p] - want));
    }
  }
  return worst;
}

TEST_F(JpegImageTest, EveryColourSpaceAndCodingModeMatchesPillow) {
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(dir())) {
    if (entry.path().extension() != ".jpg") continue;
    const std::string path = entry.path().string();
    const std::string base = path.substr(0, path.size() - 4);
    SCOPED_TRACE(path);
    ++cases;
    const bool big = path.find("64x48") != std::string::npos;
    int64_t height = 0, width = 0;
    read_jpeg_size_bytes(read_bytes(path), path, height, width);
    EXPECT_EQ(height, big ? 48 : 28);
    EXPECT_EQ(width, big ? 64 : 28);

    // Both sides are libjpeg-turbo (Debian's libjpeg62-turbo under Pillow)
    // with the same DCT, upsampling and CMYK formula: the RGB bytes must be
    // identical (measured: max difference 0 on every case).
    const DecodedImage rgb = decode_jpeg(path, 3);
    ASSERT_EQ(rgb.channels, 3);
    ASSERT_EQ(rgb.height, height);
    ASSERT_EQ(rgb.width, width);
    EXPECT_EQ(max_difference(rgb, read_bytes(base + ".rgb")), 0);

    // Gray from colour: ctmq rounds (299 R + 587 G + 114 B) / 1000 (the PNG
    // path's formula), Pillow uses 16-bit fixed-point weights; they differ by
    // at most 1 where the exact value is near .5 (measured: 1 on 4 of the 9
    // colour files (cmyk_q90, cmyk_64x48_progressive_q50, rgb_64x48_q50,
    // ycck_q90), 0 on the others and on gray files, which are not converted).
    const DecodedImage gray = decode_jpeg(path, 1);
    ASSERT_EQ(gray.channels, 1);
    const bool gray_file = path.find("/gray_") != std::string::npos;
    EXPECT_LE(max_difference(gray, read_bytes(base + ".l")), gray_file ? 0 : 1);
  }
  EXPECT_EQ(cases, 13);
}

TEST_F(JpegImageTest, AGrayFileIsTheFashionMnistImageUpToJpegLoss) {
  // Guards the oracle itself: Pillow's file decodes near the real image.
  const DecodedImage image = decode_jpeg(dir() + "/gray_q90.jpg", 1);
  double error = 0;
  for (size_t p = 0; p < 784; ++p) error += std::abs(image.pixels[p] - images_[p]);
  EXPECT_LT(error / 784, 6.0);
}

TEST_F(JpegImageTest, TruncatedFilesAreRefusedByName) {
  const std::string bytes = read_bytes(dir() + "/rgb_q90.jpg");
  for (size_t keep : {bytes.size() / 2, bytes.size() - 2 /* no EOI */, size_t{200}, size_t{4}}) {
    SCOPED_TRACE(keep);
    const std::string path = dir() + "/cut-" + std::to_string(keep) + ".jpeg";
    write_bytes(path, bytes.substr(0, keep));
    const std::string message = error_of([&] { decode_jpeg(path, 3); });
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("not a valid JPEG"), std::string::npos) << message;
  }
  // The progressive path too (its scans are decoded in jpeg_finish_decompress).
  const std::string progressive = read_bytes(dir() + "/rgb_progressive_q75.jpg");
  const std::string path = dir() + "/cut-progressive.jpeg";
  write_bytes(path, progressive.substr(0, progressive.size() * 2 / 3));
  EXPECT_NE(error_of([&] { decode_jpeg(path, 1); }).find(path), std::string::npos);
}

// JPEG has no checksum: a flipped bit that still spells valid Huffman codes
// decodes to other pixels unnoticed, by Pillow too. What a decoder can and
// must notice is corrupt structure: here a byte of the entropy-coded data
// becomes 0xFF, which turns it and the next byte into a stray marker.
TEST_F(JpegImageTest, ACorruptByteInTheEntropyCodedDataIsRefusedByName) {
  std::string bytes = read_bytes(dir() + "/rgb_q90.jpg");
  const size_t sos = bytes.find("\xFF\xDA");
  ASSERT_NE(sos, std::string::npos);
  const size_t header = (static_cast<uint8_t>(bytes[sos + 2]) << 8) | uint8_t(bytes[sos + 3]);
  size_t at = sos + 2 + header + (bytes.size() - sos - header) / 2;
  while (bytes[at + 1] == '\0' || static_cast<uint8_t>(bytes[at + 1]) == 0xFF) ++at;
  bytes[at] = '\xFF';
  const std::string path = dir() + "/corrupt.jpg";
  write_bytes(path, bytes);
  const std::string message = error_of([&] { decode_jpeg(path, 3); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("not a valid JPEG (libjpeg-turbo: "), std::string::npos) << message;
}

TEST_F(JpegImageTest, GarbageAndCorruptHeadersAreRefusedByName) {
  const std::string path = dir() + "/garbage.jpg";
  write_bytes(path, "<html>not an image</html>");
  EXPECT_NE(error_of([&] { decode_jpeg(path, 3); }).find(path + " is not a JPEG file"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              decode_image_bytes(read_bytes(path), path, 3);
            }).find(path + " is not a PNG or JPEG file"),
            std::string::npos);
  std::string bytes = read_bytes(dir() + "/gray_q90.jpg");
  const size_t sof = bytes.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  std::string huge = bytes;
  bytes[sof + 4] = '\x01';  // sample precision 1 bit: invalid
  write_bytes(path, bytes);
  const std::string message = error_of([&] { decode_jpeg(path, 1); });
  EXPECT_NE(message.find(path + " is not a valid JPEG"), std::string::npos) << message;

  // A frame header claiming 65000 x 65000 px is refused before allocating.
  for (size_t at : {sof + 5, sof + 7}) huge.replace(at, 2, "\xFD\xE8");
  write_bytes(path, huge);
  int64_t height = 0, width = 0;
  read_image_size(path, height, width);
  EXPECT_EQ(height, 65000);
  EXPECT_EQ(width, 65000);
  const std::string too_large = error_of([&] { decode_jpeg(path, 1); });
  EXPECT_NE(too_large.find(path), std::string::npos) << too_large;
  EXPECT_NE(too_large.find("over 1 GiB decoded"), std::string::npos) << too_large;
}

TEST_F(JpegImageTest, AMixedPngAndJpegFolderReadsWithLabelsAndSizePolicy) {
  SourceOptions options;
  options.kind = SourceKind::kImageFolder;
  options.inputs = {dir() + "/folder"};
  options.channels = 1;
  {
    auto source = open_image_folder_source(options);
    ASSERT_EQ(source->count(), 5);  // notes.txt skipped
    EXPECT_EQ(source->class_names(), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(source->shape(), (ImageShape{1, 28, 28}));
    SourceRecord r;
    source->read(r);  // a/0.png: lossless
    EXPECT_EQ(r.label, 0);
    EXPECT_TRUE(std::equal(r.pixels.begin(), r.pixels.end(), images_.begin()));
    source->read(r);  // a/1.jpg
    EXPECT_EQ(r.label, 0);
    EXPECT_EQ(r.pixels, decode_jpeg(dir() + "/folder/a/1.jpg", 1).pixels);
    source->read(r);  // a/2.JPEG: RGB
    EXPECT_EQ(r.pixels, decode_jpeg(dir() + "/folder/a/2.JPEG", 1).pixels);
    source->read(r);  // b/3.jpg: a PNG by its signature, lossless
    EXPECT_EQ(r.label, 1);
    EXPECT_TRUE(std::equal(r.pixels.begin(), r.pixels.end(), images_.begin() + 4 * 784));
    // b/4.jpeg is 64x48: refused under the default policy, by name.
    const std::string message = error_of([&] { source->read(r); });
    EXPECT_NE(message.find("4.jpeg is 64x48"), std::string::npos) << message;
    EXPECT_NE(message.find("--size-mismatch resize"), std::string::npos) << message;
  }
  options.size_policy = SizePolicy::kResize;
  auto source = open_image_folder_source(options);
  source->seek(4);
  SourceRecord r;
  source->read(r);
  EXPECT_EQ(r.label, 1);
  EXPECT_EQ(r.pixels.size(), 784u);

  // A .jpg holding garbage is refused by name when read.
  write_bytes(dir() + "/folder/b/5.jpg", "garbage");
  auto with_garbage = open_image_folder_source(options);
  with_garbage->seek(5);
  const std::string message = error_of([&] { with_garbage->read(r); });
  EXPECT_NE(message.find("5.jpg is not a PNG or JPEG file"), std::string::npos) << message;
  fs::remove(dir() + "/folder/b/5.jpg");
}

}  // namespace
}  // namespace ctmq::data
