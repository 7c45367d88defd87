// Encoded (version 2) shards end to end, on real Fashion-MNIST images written
// by Debian's Pillow (/usr/bin/python3) as a JPEG + PNG folder at several
// sizes, gray and RGB: ctmq-shard's encoding policy (small files kept byte for
// byte, large ones resized and re-encoded, checked against Pillow's own
// resize), the offset index read by an independent parser of the spec, the
// evaluation and random-resized-crop transforms of the reader (against
// torchvision's Resize + CenterCrop), fault injection (checksum, truncation,
// offsets, undecodable bytes), and one process = a 2-slice array.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/data/image_file.h"
#include "ctmq/data/jpeg_image.h"
#include "ctmq/data/manifest.h"
#include "ctmq/data/shard_builder.h"
#include "ctmq/data/shard_dataset.h"
#include "ctmq/data/shard_format.h"
#include "test_support.h"

namespace ctmq::data {
namespace {
namespace fs = std::filesystem;
using ctmq::testing::error_of;

constexpr const char* kPython = "/usr/bin/python3";  // Debian's, with PIL and torchvision
constexpr int64_t kMaxSide = 64;
constexpr int64_t kOut = 32;  // the reader delivers 3 x 32 x 32

// Writes DIR/folder from DIR/mnist.raw (8 images of 28x28): per file its
// size (W x H), mode and format; the names sort in this order. For every
// image whose shorter side is over kMaxSide, Pillow's resize of the RGB image
// to the shorter side kMaxSide (BILINEAR, which antialiases), saved as a
// JPEG at quality 90 (4:2:0) and decoded, as NAME.ref (H x W x 3 bytes). Also DIR/pattern: one PNG,
// a white 40x40 square centred in a black 150x100 (W x H) canvas.
const char* kMakeFolder = R"(
import os, sys
from PIL import Image
out, max_side = sys.argv[1], int(sys.argv[2])
raw = open(os.path.join(out, "mnist.raw"), "rb").read()
im = [Image.frombytes("L", (28, 28), raw[i * 784:(i + 1) * 784]) for i in range(8)]
rgb = lambda i: Image.merge("RGB", (im[i], im[(i + 1) % 8], im[(i + 2) % 8]))
cases = [  # class, name, image, (W, H), format
    ("a", "0.jpg", im[0], (60, 40), "JPEG"),          # gray, kept
    ("a", "1.jpg", rgb(1), (300, 200), "JPEG"),       # RGB landscape, resized
    ("a", "2.png", rgb(2), (50, 50), "PNG"),          # RGB PNG, kept
    ("b", "3.png", im[3], (120, 90), "PNG"),          # gray PNG, resized to JPEG
    ("b", "4.jpg", rgb(4), (28, 28), "JPEG"),         # RGB, kept
    ("b", "5.jpeg", rgb(5), (200, 300), "JPEG"),      # RGB portrait, resized
    ("b", "6.jpg", im[6], (64, 100), "JPEG"),         # gray, shorter side = max: kept
]
for c, name, image, size, fmt in cases:
    os.makedirs(os.path.join(out, "folder", c), exist_ok=True)
    path = os.path.join(out, "folder", c, name)
    image.resize(size, Image.BILINEAR).save(path, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    stored = Image.open(path).convert("RGB")
    w, h = stored.size
    if min(w, h) > max_side:
        size = (max_side, max_side * h // w) if w <= h else (max_side * w // h, max_side)
        ref = os.path.join(out, c + "-" + name + ".ref")
        stored.resize(size, Image.BILINEAR).save(ref + ".jpg", quality=90)
        open(ref, "wb").write(Image.open(ref + ".jpg").convert("RGB").tobytes())
pattern = Image.new("L", (150, 100), 0)
pattern.paste(255, (55, 30, 95, 70))
os.makedirs(os.path.join(out, "pattern", "p"))
pattern.save(os.path.join(out, "pattern", "p", "0.png"))
)";

// torchvision's evaluation transform of every DIR/stored/*.bin (one stored
// image file each): Resize(round(S / 0.875)) then CenterCrop(S) of the RGB
// image, written as NAME.eval (S x S x 3 bytes).
const char* kTorchvisionEval = R"(
import os, sys
from PIL import Image
from torchvision import transforms
d, size = sys.argv[1], int(sys.argv[2])
t = transforms.Compose([transforms.Resize(round(size / 0.875)), transforms.CenterCrop(size)])
for f in sorted(os.listdir(d)):
    if f.endswith(".bin"):
        image = Image.open(os.path.join(d, f)).convert("RGB")
        open(os.path.join(d, f[:-4] + ".eval"), "wb").write(t(image).tobytes())
)";

bool run_python(const std::string& dir, const std::string& name, const char* script,
                const std::string& args) {
  std::ofstream(dir + "/" + name) << script;
  const std::string command = std::string(kPython) + " " + dir + "/" + name + " " + args + " > " +
                              dir + "/" + name + ".log 2>&1";
  return std::system(command.c_str()) == 0;
}

ShardBuildOptions encoded_build(const std::string& input, const std::string& output,
                                int64_t records_per_shard) {
  ShardBuildOptions o;
  o.source.kind = SourceKind::kImageFolder;
  o.source.inputs = {input};
  o.source.channels = 3;
  o.source.height = kOut;
  o.source.width = kOut;
  o.source.record = RecordKind::kEncoded;
  o.source.encoding.max_side = kMaxSide;
  o.source.encoding.jpeg_quality = 90;
  o.output_dir = output;
  o.records_per_shard = records_per_shard;
  return o;
}

// An independent reader of the version-2 layout (docs/shard-format.md): the
// image bytes of every record of one shard file, label and crc checked.
std::vector<std::string> stored_images(const std::string& shard_path) {
  const std::string file = read_file(shard_path);
  EXPECT_EQ(decode_le32(file.data() + 8), 2u);
  EXPECT_EQ(decode_le32(file.data() + 28), 2u);  // dtype encoded
  const uint64_t count = decode_le64(file.data() + 32);
  const size_t index_at = file.size() - (count + 1) * 8 - 4;
  EXPECT_EQ(decode_le32(file.data() + file.size() - 4),
            crc32_of(file.data() + index_at, (count + 1) * 8));
  std::vector<std::string> images;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t begin = decode_le64(file.data() + index_at + 8 * i);
    const uint64_t end = decode_le64(file.data() + index_at + 8 * (i + 1));
    EXPECT_EQ(decode_le32(file.data() + end - 4), crc32_of(file.data() + begin, end - begin - 4));
    images.push_back(file.substr(begin + 4, end - begin - 8));
  }
  return images;
}

class EncodedShardTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ctmq::testing::TempDir;
    const auto data = ctmq::testing::load_fashion_mnist_train(8).images.contiguous();
    std::ofstream(dir() + "/mnist.raw", std::ios::binary)
        .write(reinterpret_cast<const char*>(data.data_ptr<uint8_t>()), data.numel());
    made_ = run_python(dir(), "make.py", kMakeFolder, dir() + " " + std::to_string(kMaxSide));
    if (made_) build_shards(encoded_build(dir() + "/folder", dir() + "/shards", 3));
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(made_) << kPython << " (Debian's, with PIL) failed:\n"
                       << read_file(dir() + "/make.py.log");
  }
  static std::string dir() { return dir_->path(); }
  static std::string manifest() { return dir() + "/shards/manifest.json"; }
  // The input files in record order (classes, then names, sorted).
  static std::vector<std::string> inputs() {
    return {"a/0.jpg", "a/1.jpg", "a/2.png", "b/3.png", "b/4.jpg", "b/5.jpeg", "b/6.jpg"};
  }
  static std::vector<std::string> all_stored() {
    std::vector<std::string> all;
    for (int s = 0; s < 3; ++s) {
      for (auto& b : stored_images(dir() + "/shards/" + shard_file_name(s))) all.push_back(b);
    }
    return all;
  }
  // A copy of the data set to damage.
  static std::string copy(const std::string& name) {
    const std::string to = dir() + "/" + name;
    fs::copy(dir() + "/shards", to, fs::copy_options::recursive);
    return to;
  }

  static ctmq::testing::TempDir* dir_;
  static bool made_;
};
ctmq::testing::TempDir* EncodedShardTest::dir_ = nullptr;
bool EncodedShardTest::made_ = false;

TEST_F(EncodedShardTest, ManifestSaysEncodedWithItsPolicyAndStoredPixelStatistics) {
  const Manifest m = load_manifest(manifest());
  EXPECT_EQ(m.version, 2);
  EXPECT_EQ(m.record, RecordKind::kEncoded);
  EXPECT_EQ(m.max_side, kMaxSide);
  EXPECT_EQ(m.jpeg_quality, 90);
  EXPECT_EQ(m.count, 7);
  EXPECT_EQ(m.shards.size(), 3u);
  EXPECT_EQ(m.shape, (ImageShape{3, kOut, kOut}));
  // pixel_count: the stored sizes (kept: their own; resized: shorter side 64).
  const uint64_t expected = 60 * 40 + 96 * 64 + 50 * 50 + 85 * 64 + 28 * 28 + 64 * 96 + 64 * 100;
  EXPECT_EQ(m.pixel_count, expected);
  // mean from the decoded stored images, independently.
  double sum = 0;
  for (const auto& bytes : all_stored()) {
    const DecodedImage image = decode_image_bytes(bytes, "stored", 3);
    for (int64_t p = 0; p < image.height * image.width; ++p) sum += image.pixels[p];
  }
  EXPECT_NEAR(m.mean[0], sum / static_cast<double>(expected) / 255.0, 1e-9);
  verify_data_set(manifest());  // every checksum, every record decodes
}

TEST_F(EncodedShardTest, SmallFilesAreKeptByteForByteLargeOnesResizedLikePillow) {
  const auto stored = all_stored();
  ASSERT_EQ(stored.size(), inputs().size());
  for (size_t i = 0; i < stored.size(); ++i) {
    const std::string original = read_file(dir() + "/folder/" + inputs()[i]);
    int64_t h = 0, w = 0;
    read_image_size_bytes(original, inputs()[i], h, w);
    SCOPED_TRACE(inputs()[i]);
    if (std::min(h, w) <= kMaxSide) {
      EXPECT_EQ(stored[i], original);
      continue;
    }
    ASSERT_TRUE(has_jpeg_signature(stored[i]));
    const DecodedImage ours = decode_jpeg_bytes(stored[i], "stored", 3);
    std::string name = inputs()[i];
    name[1] = '-';
    const std::string ref = read_file(dir() + "/" + name + ".ref");  // HWC, Pillow's resize
    ASSERT_EQ(static_cast<size_t>(ours.pixels.size()), ref.size());
    EXPECT_EQ(std::min(ours.height, ours.width), kMaxSide);
    // Tolerance: two resize implementations (PIL's and LibTorch's antialiased
    // bilinear round differently), each then through JPEG quality 90: mean
    // absolute difference under 2 grey levels, none over 64.
    const int64_t plane = ours.height * ours.width;
    double total = 0;
    int worst = 0;
    for (int64_t p = 0; p < plane; ++p) {
      for (int c = 0; c < 3; ++c) {
        const int d =
            std::abs(int{ours.pixels[c * plane + p]} - int{static_cast<uint8_t>(ref[p * 3 + c])});
        total += d;
        worst = std::max(worst, d);
      }
    }
    EXPECT_LT(total / static_cast<double>(3 * plane), 2.0);
    EXPECT_LE(worst, 64);
  }
}

TEST_F(EncodedShardTest, EvaluationTransformMatchesTorchvisionResizeAndCentreCrop) {
  const auto stored = all_stored();
  const std::string eval_dir = dir() + "/eval";
  fs::create_directories(eval_dir);
  for (size_t i = 0; i < stored.size(); ++i) {
    std::ofstream(eval_dir + "/" + std::to_string(i) + ".bin", std::ios::binary) << stored[i];
  }
  ASSERT_TRUE(
      run_python(eval_dir, "eval.py", kTorchvisionEval, eval_dir + " " + std::to_string(kOut)))
      << read_file(eval_dir + "/eval.py.log");
  ShardDataset dataset(manifest());
  std::vector<int64_t> all(stored.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  const Batch batch = dataset.get_batch(all);
  ASSERT_EQ(batch.images.sizes(), (std::vector<int64_t>{7, 3, kOut, kOut}));
  EXPECT_EQ(batch.labels[0].item<int64_t>(), 0);
  EXPECT_EQ(batch.labels[6].item<int64_t>(), 1);
  // Back to [0, 255] pixels.
  auto mean = torch::tensor(std::vector<float>(dataset.mean().begin(), dataset.mean().end()));
  auto sd = torch::tensor(std::vector<float>(dataset.std_dev().begin(), dataset.std_dev().end()));
  const torch::Tensor pixels =
      (batch.images * sd.view({1, 3, 1, 1}) + mean.view({1, 3, 1, 1})) * 255;
  for (size_t i = 0; i < stored.size(); ++i) {
    SCOPED_TRACE(inputs()[i]);
    const std::string ref = read_file(eval_dir + "/" + std::to_string(i) + ".eval");
    ASSERT_EQ(ref.size(), static_cast<size_t>(3 * kOut * kOut));
    const torch::Tensor theirs =
        torch::from_blob(const_cast<char*>(ref.data()), {kOut, kOut, 3}, torch::kUInt8)
            .permute({2, 0, 1})
            .to(torch::kFloat32);
    const torch::Tensor diff = (pixels[static_cast<int64_t>(i)] - theirs).abs();
    // Tolerance: PIL's and LibTorch's antialiased bilinear differ by rounding
    // and filter support at the borders: mean under 2 grey levels.
    EXPECT_LT(diff.mean().item<double>(), 2.0);
  }
}

TEST_F(EncodedShardTest, CentredPatternStaysCentredUnderTheEvaluationTransform) {
  build_shards(encoded_build(dir() + "/pattern", dir() + "/pattern-shards", 0));
  ShardDataset dataset(dir() + "/pattern-shards/manifest.json");
  const Batch batch = dataset.get_batch({0});
  ASSERT_EQ(batch.images.sizes(), (std::vector<int64_t>{1, 3, kOut, kOut}));
  // 150x100 -> shorter side 64 when stored (96x64), then round(32 / 0.875) =
  // 37 (55x37), centre 32x32: the square (40 of 100 px) is ~15 px wide and
  // centred.
  const torch::Tensor img = batch.images[0][0];
  const torch::Tensor bright = img > img.mean();
  const torch::Tensor ys = torch::arange(kOut).view({kOut, 1}).expand({kOut, kOut});
  const torch::Tensor xs = torch::arange(kOut).view({1, kOut}).expand({kOut, kOut});
  const double n = bright.sum().item<double>();
  EXPECT_NEAR(n, 15.0 * 15.0, 60.0);
  EXPECT_NEAR(ys.masked_select(bright).sum().item<double>() / n, (kOut - 1) / 2.0, 0.75);
  EXPECT_NEAR(xs.masked_select(bright).sum().item<double>() / n, (kOut - 1) / 2.0, 0.75);
  EXPECT_FALSE(bright[0][0].item<bool>());
  EXPECT_FALSE(bright[kOut - 1][kOut - 1].item<bool>());
}

TEST_F(EncodedShardTest, RandomResizedCropIsSeededPerEpochAndIndex) {
  ShardDataset dataset(manifest());
  const AugmentOptions rrc{Augment::kRandomResizedCrop, 0, 7};
  const std::vector<int64_t> indices{1, 5, 3, 0};
  const Batch a = dataset.get_training_batch(indices, 2, rrc);
  const Batch b = dataset.get_training_batch(indices, 2, rrc);
  const Batch c = dataset.get_training_batch(indices, 3, rrc);
  ASSERT_EQ(a.images.sizes(), (std::vector<int64_t>{4, 3, kOut, kOut}));
  EXPECT_TRUE(torch::equal(a.images, b.images));
  EXPECT_FALSE(torch::equal(a.images, c.images));
  // A sample does not depend on its batch or its position (resume, ranks).
  const Batch single = dataset.get_training_batch({3}, 2, rrc);
  EXPECT_TRUE(torch::equal(single.images[0], a.images[2]));
  // Each sample is its crop box resized: its mean is within the stored image's range.
  EXPECT_TRUE(torch::equal(a.labels, dataset.get_batch(indices).labels));
  // No augmentation = the evaluation transform.
  EXPECT_TRUE(torch::equal(dataset.get_training_batch(indices, 2, {}).images,
                           dataset.get_batch(indices).images));
}

TEST_F(EncodedShardTest, AugmentationsOfTheOtherRecordTypeAreRefusedByName) {
  ShardDataset dataset(manifest());
  EXPECT_NE(error_of([&] {
              dataset.get_training_batch({0}, 0, {Augment::kCropFlip, 2, 0});
            }).find("--augment crop-flip"),
            std::string::npos);
  ctmq::testing::TempDir fixed;
  ShardBuildOptions o = encoded_build(dir() + "/folder", fixed.path() + "/out", 0);
  o.source.record = RecordKind::kFixed;
  o.source.size_policy = SizePolicy::kResize;
  build_shards(o);
  ShardDataset raw(fixed.path() + "/out/manifest.json");
  EXPECT_EQ(raw.record(), RecordKind::kFixed);
  EXPECT_NE(error_of([&] {
              raw.get_training_batch({0}, 0, {Augment::kRandomResizedCrop, 0, 0});
            }).find("--augment random-resized-crop"),
            std::string::npos);
}

TEST_F(EncodedShardTest, BadRecordsAreNamedWithShardRecordAndIndex) {
  // Shard 1 holds records 3..5; its record 1 is data set index 4.
  const std::string path = "/" + shard_file_name(1);
  const auto offsets_of = [](const std::string& file) {
    const uint64_t count = decode_le64(file.data() + 32);
    return std::make_pair(file.size() - (count + 1) * 8 - 4, count);
  };
  {  // a flipped byte inside the image: the record's crc
    const std::string d = copy("bad-crc");
    std::string file = read_file(d + path);
    const auto [index_at, count] = offsets_of(file);
    file[decode_le64(file.data() + index_at + 8) + 20] ^= 0x40;
    std::ofstream(d + path, std::ios::binary) << file;
    ShardDataset dataset(d + "/manifest.json");
    const std::string e = error_of([&] { dataset.get_batch({4}); });
    EXPECT_NE(e.find(shard_file_name(1) + ": record 1 (data set index 4) fails its checksum"),
              std::string::npos)
        << e;
    dataset.get_batch({3, 5});  // the others still read
  }
  {  // bytes that are no image, with a correct crc: refused when decoded
    const std::string d = copy("bad-bytes");
    std::string file = read_file(d + path);
    const auto [index_at, count] = offsets_of(file);
    const uint64_t begin = decode_le64(file.data() + index_at + 8);
    const uint64_t end = decode_le64(file.data() + index_at + 16);
    for (uint64_t at = begin + 4; at < end - 4; ++at) file[at] = 'x';
    encode_le32(file.data() + end - 4, crc32_of(file.data() + begin, end - begin - 4));
    std::ofstream(d + path, std::ios::binary) << file;
    ShardDataset dataset(d + "/manifest.json");
    const std::string e = error_of([&] { dataset.get_batch({4}); });
    EXPECT_NE(e.find(shard_file_name(1) + ": record 1 (data set index 4) is not a PNG or JPEG"),
              std::string::npos)
        << e;
  }
  {  // truncated: refused when opened, naming the shard
    const std::string d = copy("truncated");
    const std::string file = read_file(d + path);
    std::ofstream(d + path, std::ios::binary) << file.substr(0, file.size() - 100);
    const std::string e = error_of([&] { ShardDataset dataset(d + "/manifest.json"); });
    EXPECT_NE(e.find(shard_file_name(1)), std::string::npos) << e;
    EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  }
  {  // an offset out of range (index crc repaired): named with record and index
    const std::string d = copy("bad-offsets");
    std::string file = read_file(d + path);
    const auto [index_at, count] = offsets_of(file);
    encode_le64(file.data() + index_at + 16, decode_le64(file.data() + index_at + 8) + 3);
    encode_le32(file.data() + file.size() - 4, crc32_of(file.data() + index_at, (count + 1) * 8));
    std::ofstream(d + path, std::ios::binary) << file;
    const std::string e = error_of([&] { ShardDataset dataset(d + "/manifest.json"); });
    EXPECT_NE(e.find(shard_file_name(1) + ": record 1 (data set index 4) has offsets"),
              std::string::npos)
        << e;
  }
  {  // an offset changed without repairing the index crc
    const std::string d = copy("bad-index-crc");
    std::string file = read_file(d + path);
    const auto [index_at, count] = offsets_of(file);
    file[index_at + 9] ^= 1;
    std::ofstream(d + path, std::ios::binary) << file;
    const std::string e = error_of([&] { ShardDataset dataset(d + "/manifest.json"); });
    EXPECT_NE(e.find("offset index checksum mismatch"), std::string::npos) << e;
  }
}

TEST_F(EncodedShardTest, TwoSliceArrayEqualsOneProcessByteForByte) {
  const std::string out = dir() + "/array";
  for (int i : {1, 0}) {
    ShardBuildOptions o = encoded_build(dir() + "/folder", out, 3);
    o.step = BuildStep::kSlice;
    o.array_index = i;
    o.array_count = 2;
    build_shards(o);
  }
  ShardBuildOptions merge = encoded_build(dir() + "/folder", out, 3);
  merge.step = BuildStep::kMerge;
  merge.array_count = 2;
  build_shards(merge);
  EXPECT_EQ(read_file(manifest()), read_file(out + "/manifest.json"));
  for (int s = 0; s < 3; ++s) {
    EXPECT_EQ(read_file(dir() + "/shards/" + shard_file_name(s)),
              read_file(out + "/" + shard_file_name(s)));
  }
}

}  // namespace
}  // namespace ctmq::data
