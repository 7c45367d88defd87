// The input readers: IDX (against the independent zlib oracle on real
// Fashion-MNIST), CIFAR binary batches, and ImageFolder PNG trees.
#include "ctmq/data/record_source.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "ctmq/common/error.h"
#include "data_test_util.h"
#include "png_test_writer.h"
#include "test_support.h"

namespace ctmq::data {
namespace {

namespace fs = std::filesystem;

using ctmq::testing::error_of;

TEST(IdxSource, GzippedFashionMnistMatchesTheOracleFromAnyPosition) {
  const std::string dir = ctmq::testing::fashion_mnist_dir();
  SourceOptions o;
  o.kind = SourceKind::kIdx;
  // Labels first: the reader tells the files apart by their magic numbers.
  o.inputs = {dir + "/train-labels-idx1-ubyte.gz", dir + "/train-images-idx3-ubyte.gz"};
  auto source = open_record_source(o);
  EXPECT_EQ(source->count(), 60000);
  EXPECT_EQ(source->shape(), (ImageShape{1, 28, 28}));
  EXPECT_EQ(source->class_names().size(), 10u);
  auto oracle = ctmq::testing::load_fashion_mnist_train(300);
  SourceRecord record;
  for (int64_t start : {0, 123}) {
    source->seek(start);
    for (int64_t i = start; i < 300; ++i) {
      source->read(record);
      ASSERT_EQ(record.label, oracle.labels[i].item<int64_t>()) << i;
      ASSERT_EQ(0, std::memcmp(record.pixels.data(), oracle.images[i].data_ptr<uint8_t>(), 784))
          << i;
    }
  }
}

TEST(IdxSource, BadInputsNameTheFile) {
  ctmq::testing::TempDir dir;
  test::write_fashion_idx(dir.path(), 10);
  SourceOptions o;
  o.inputs = {dir.path() + "/images.idx", dir.path() + "/images.idx"};
  EXPECT_NE(error_of([&] { open_record_source(o); }).find("not a labels file"), std::string::npos);
  o.inputs = {dir.path() + "/images.idx", dir.path() + "/missing.idx"};
  EXPECT_NE(error_of([&] { open_record_source(o); }).find("missing.idx"), std::string::npos);
  // Truncated image data: the record that is cut short is named.
  fs::resize_file(dir.path() + "/images.idx", 16 + 784 * 7 + 100);
  o.inputs = {dir.path() + "/images.idx", dir.path() + "/labels.idx"};
  auto source = open_record_source(o);
  SourceRecord r;
  for (int i = 0; i < 7; ++i) source->read(r);
  std::string message = error_of([&] { source->read(r); });
  EXPECT_NE(message.find("record 7"), std::string::npos) << message;
  EXPECT_NE(message.find("images.idx"), std::string::npos) << message;
}

TEST(IdxSource, AGzipMemberThatFailsItsCrcIsNamedCorruptNotCutShort) {
  // Real Fashion-MNIST labels (small: the whole member inflates at the header)
  // and images, gzipped with zlib; then one byte of each member's CRC-32
  // trailer is flipped: the data inflates, the check fails.
  ctmq::testing::TempDir dir;
  test::write_fashion_idx(dir.path(), 50);
  for (const std::string name : {"labels.idx", "images.idx"}) {
    std::ifstream in(dir.path() + "/" + name, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string gz = dir.path() + "/" + name + ".gz";
    gzFile out = gzopen(gz.c_str(), "wb");
    ASSERT_NE(out, nullptr);
    ASSERT_EQ(gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    gzclose(out);
    std::fstream f(gz, std::ios::binary | std::ios::in | std::ios::out);
    f.seekg(-8, std::ios::end);  // trailer: CRC-32, then ISIZE
    char c = 0;
    f.get(c);
    f.seekp(-8, std::ios::end);
    f.put(static_cast<char>(c ^ 0x5a));
  }
  SourceOptions o;
  o.inputs = {dir.path() + "/images.idx", dir.path() + "/labels.idx.gz"};
  std::string message = error_of([&] {
    auto source = open_record_source(o);
    SourceRecord r;
    for (int i = 0; i < 50; ++i) source->read(r);
  });
  EXPECT_NE(message.find("labels.idx.gz is a corrupt gzip stream"), std::string::npos) << message;
  EXPECT_EQ(message.find("cut short"), std::string::npos) << message;
  o.inputs = {dir.path() + "/images.idx.gz", dir.path() + "/labels.idx"};
  message = error_of([&] {
    auto source = open_record_source(o);
    SourceRecord r;
    for (int i = 0; i < 50; ++i) source->read(r);
  });
  EXPECT_NE(message.find("images.idx.gz is a corrupt gzip stream"), std::string::npos) << message;
}

TEST(CifarSource, ReadsLabelsPixelsAndClassNamesAcrossBatches) {
  ctmq::testing::TempDir dir;
  std::mt19937 rng(3);
  std::vector<std::pair<int, std::vector<uint8_t>>> truth;
  for (int f = 0; f < 2; ++f) {
    std::ofstream out(dir.path() + "/data_batch_" + std::to_string(f + 1) + ".bin",
                      std::ios::binary);
    for (int r = 0; r < 3 + f; ++r) {
      std::vector<uint8_t> pixels(3072);
      for (auto& p : pixels) p = static_cast<uint8_t>(rng());
      const int coarse = static_cast<int>(rng() % 20), fine = static_cast<int>(rng() % 100);
      out.put(static_cast<char>(coarse));
      out.put(static_cast<char>(fine));
      out.write(reinterpret_cast<const char*>(pixels.data()), pixels.size());
      truth.push_back({fine, pixels});
    }
  }
  SourceOptions o;
  o.kind = SourceKind::kCifar100;
  o.inputs = {dir.path() + "/data_batch_1.bin", dir.path() + "/data_batch_2.bin"};
  auto source = open_record_source(o);
  ASSERT_EQ(source->count(), 7);
  EXPECT_EQ(source->shape(), (ImageShape{3, 32, 32}));
  EXPECT_EQ(source->class_names().size(), 100u);
  SourceRecord r;
  source->seek(2);
  for (int i = 2; i < 7; ++i) {
    source->read(r);
    EXPECT_EQ(r.label, truth[i].first) << i;
    EXPECT_EQ(r.pixels, truth[i].second) << i;
  }
  // A CIFAR-10 reading of the same bytes does not fit the 3073-byte records.
  o.kind = SourceKind::kCifar10;
  EXPECT_NE(error_of([&] { open_record_source(o); }).find("data_batch_1.bin"), std::string::npos);
}

TEST(CifarSource, ClassNamesFromBatchesMeta) {
  ctmq::testing::TempDir dir;
  {
    std::ofstream out(dir.path() + "/data_batch_1.bin", std::ios::binary);
    out.put(4);
    out.write(std::string(3072, '\x7f').data(), 3072);
    std::ofstream meta(dir.path() + "/batches.meta.txt");
    for (const char* n :
         {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"})
      meta << n << "\n";
  }
  SourceOptions o;
  o.kind = SourceKind::kCifar10;
  o.inputs = {dir.path() + "/data_batch_1.bin"};
  auto source = open_record_source(o);
  EXPECT_EQ(source->class_names()[4], "deer");
  SourceRecord r;
  source->read(r);
  EXPECT_EQ(r.label, 4);
}

class ImageFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* c : {"cat", "dog"}) fs::create_directories(root() + "/" + c);
    test::PngSpec rgb;  // 7x5 RGB
    truth_b_ = test::write_test_png(root() + "/cat/b.png", rgb, 1);
    test::PngSpec palette = rgb;
    palette.color_type = PNG_COLOR_TYPE_PALETTE;
    palette.bit_depth = 4;
    truth_a_ = test::write_test_png(root() + "/cat/a.png", palette, 2);
    test::PngSpec gray = rgb;
    gray.color_type = PNG_COLOR_TYPE_GRAY;
    gray.bit_depth = 16;
    gray.interlaced = true;
    test::write_test_png(root() + "/dog/c.png", gray, 3);
    std::ofstream(root() + "/dog/readme.txt") << "not an image";
  }
  std::string root() const { return temp_.path() + "/root"; }
  SourceOptions options() const {
    SourceOptions o;
    o.kind = SourceKind::kImageFolder;
    o.inputs = {root()};
    return o;
  }
  ctmq::testing::TempDir temp_;
  test::PngTruth truth_a_, truth_b_;
};

TEST_F(ImageFolderTest, ClassesAndFilesInSortedOrder) {
  auto source = open_record_source(options());
  ASSERT_EQ(source->count(), 3);
  EXPECT_EQ(source->class_names(), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(source->shape(), (ImageShape{3, 5, 7}));
  SourceRecord r;
  source->read(r);  // cat/a.png
  EXPECT_EQ(r.label, 0);
  const size_t plane = 35;
  for (size_t p = 0; p < plane; ++p) ASSERT_EQ(r.pixels[plane + p], truth_a_.rgb[p * 3 + 1]);
  source->read(r);  // cat/b.png
  for (size_t p = 0; p < plane; ++p) ASSERT_EQ(r.pixels[2 * plane + p], truth_b_.rgb[p * 3 + 2]);
  source->read(r);  // dog/c.png
  EXPECT_EQ(r.label, 1);
}

TEST_F(ImageFolderTest, OtherSizesAreRejectedOrResizedByOption) {
  test::PngSpec big;
  big.width = 14;
  big.height = 10;
  test::write_test_png(root() + "/dog/d.png", big, 4);
  auto source = open_record_source(options());
  SourceRecord r;
  source->seek(3);
  std::string message = error_of([&] { source->read(r); });
  EXPECT_NE(message.find("d.png"), std::string::npos) << message;
  EXPECT_NE(message.find("--size-mismatch resize"), std::string::npos) << message;

  SourceOptions o = options();
  o.size_policy = SizePolicy::kResize;
  o.channels = 1;
  auto resized = open_record_source(o);
  resized->seek(3);
  resized->read(r);
  EXPECT_EQ(r.pixels.size(), 35u);
  // Resizing to the same size as the file is the identity; an explicit
  // --image-size resizes everything.
  o.height = 10;
  o.width = 14;
  auto explicit_size = open_record_source(o);
  EXPECT_EQ(explicit_size->shape(), (ImageShape{1, 10, 14}));
  explicit_size->read(r);
  EXPECT_EQ(r.pixels.size(), 140u);
}

// A PNG whose IHDR claims width x height RGB pixels, with no image data: what a
// corrupt or hostile header looks like (661 bytes in the report; 45 here).
void write_png_header_only(const std::string& path, uint32_t width, uint32_t height) {
  auto be32 = [](std::string& out, uint32_t v) {
    for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<char>((v >> shift) & 0xff));
  };
  auto chunk = [&](std::string& out, const std::string& type, const std::string& data) {
    be32(out, static_cast<uint32_t>(data.size()));
    const std::string body = type + data;
    out += body;
    be32(out,
         static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size())));
  };
  std::string ihdr;
  be32(ihdr, width);
  be32(ihdr, height);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB, deflate, no filter, no interlace
  std::string png("\x89PNG\r\n\x1a\n", 8);
  chunk(png, "IHDR", ihdr);
  chunk(png, "IEND", "");
  std::ofstream(path, std::ios::binary) << png;
}

TEST_F(ImageFolderTest, AHugeHeaderFirstInItsFolderIsRefusedByNameAndLeavesNoTemporaryFile) {
  write_png_header_only(root() + "/cat/0-huge.png", 100000, 100000);  // sorts first
  ShardBuildOptions build;
  build.source = options();
  build.output_dir = temp_.path() + "/out";
  const std::string message = error_of([&] { build_shards(build); });
  EXPECT_NE(message.find("0-huge.png"), std::string::npos) << message;
  EXPECT_NE(message.find("1 GiB"), std::string::npos) << message;
  if (fs::exists(build.output_dir)) {
    for (const auto& entry : fs::recursive_directory_iterator(build.output_dir))
      EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
  }
  // With a size given, the same file is decoded and refused (decode limit), still by name.
  build.source.height = 5;
  build.source.width = 7;
  build.source.size_policy = SizePolicy::kResize;
  const std::string resized = error_of([&] { build_shards(build); });
  EXPECT_NE(resized.find("0-huge.png"), std::string::npos) << resized;
  if (fs::exists(build.output_dir)) {
    for (const auto& entry : fs::recursive_directory_iterator(build.output_dir))
      EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
  }
}

TEST_F(ImageFolderTest, APngThatIsNotAPngNamesTheFile) {
  std::ofstream(root() + "/dog/e.png") << "<html>not an image</html>";
  auto source = open_record_source(options());
  source->seek(3);
  SourceRecord r;
  std::string message = error_of([&] { source->read(r); });
  EXPECT_NE(message.find("e.png"), std::string::npos) << message;
  EXPECT_NE(message.find("not a PNG"), std::string::npos) << message;
}

}  // namespace
}  // namespace ctmq::data
