// IDX files (MNIST, Fashion-MNIST): big-endian headers, ubyte data. zlib's
// gz* functions read gzipped and plain files alike.
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "ctmq/common/byte_coding.h"
#include "ctmq/common/error.h"
#include "ctmq/data/record_source.h"

namespace ctmq::data {
namespace {

constexpr uint32_t kIdxImagesMagic = 0x00000803;  // ubyte, 3 dimensions
constexpr uint32_t kIdxLabelsMagic = 0x00000801;  // ubyte, 1 dimension

class GzFile {
 public:
  explicit GzFile(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
    CTMQ_CHECK(file_ != nullptr, "input " << path << " cannot be opened; check --input");
    gzbuffer(file_, 1 << 20);
  }
  ~GzFile() {
    if (file_) gzclose(file_);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  // Reads exactly `size` bytes or throws naming the file and `what`.
  void read_exactly(void* out, size_t size, const std::string& what) {
    int got = gzread(file_, out, static_cast<unsigned>(size));
    // A gzip member whose data or trailer (CRC-32, length) is damaged inflates
    // with Z_DATA_ERROR, possibly after delivering every byte asked for.
    int error = Z_OK;
    const char* message = gzerror(file_, &error);
    CTMQ_CHECK(error != Z_DATA_ERROR, "input "
                                          << path_ << " is a corrupt gzip stream (zlib: " << message
                                          << ", while reading " << what
                                          << "); the file is damaged: download or copy it again");
    CTMQ_CHECK(got == static_cast<int>(size),
               "input " << path_ << ": " << what << " is cut short (read " << (got < 0 ? 0 : got)
                        << " of " << size << " bytes); the file is truncated or corrupt");
  }
  void seek(int64_t offset) {
    CTMQ_CHECK(
        gzseek(file_, static_cast<z_off_t>(offset), SEEK_SET) == offset,
        "input " << path_ << ": cannot seek to byte " << offset << "; the file is truncated");
  }
  uint32_t read_header_u32(const std::string& what) {
    unsigned char b[4];
    read_exactly(b, 4, what);
    return decode_be32(b);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  gzFile file_;
};

class IdxSource : public RecordSource {
 public:
  explicit IdxSource(const SourceOptions& options) {
    CTMQ_CHECK(
        options.inputs.size() == 2,
        "format idx needs two --input files (images and labels), got " << options.inputs.size());
    // Tell the images file from the labels file by their magic numbers.
    std::unique_ptr<GzFile> a = std::make_unique<GzFile>(options.inputs[0]);
    std::unique_ptr<GzFile> b = std::make_unique<GzFile>(options.inputs[1]);
    uint32_t magic_a = a->read_header_u32("IDX header");
    uint32_t magic_b = b->read_header_u32("IDX header");
    if (magic_a == kIdxLabelsMagic && magic_b == kIdxImagesMagic) {
      std::swap(a, b);
      std::swap(magic_a, magic_b);
    }
    CTMQ_CHECK(magic_a == kIdxImagesMagic,
               "input " << a->path() << ": IDX magic 0x" << std::hex << magic_a
                        << " is not an images file (0x00000803: ubyte, 3 dimensions)");
    CTMQ_CHECK(magic_b == kIdxLabelsMagic,
               "input " << b->path() << ": IDX magic 0x" << std::hex << magic_b
                        << " is not a labels file (0x00000801: ubyte, 1 dimension)");
    images_ = std::move(a);
    const int64_t count = images_->read_header_u32("IDX header");
    shape_ = {1, images_->read_header_u32("IDX header"), images_->read_header_u32("IDX header")};
    const int64_t label_count = b->read_header_u32("IDX header");
    CTMQ_CHECK(count == label_count, "inputs " << images_->path() << " (" << count
                                               << " images) and " << b->path() << " ("
                                               << label_count << " labels) do not match");
    // Checked before pixels() is used: two 32-bit sizes may overflow it.
    CTMQ_CHECK(fits_in_a_record(shape_), "input " << images_->path() << ": the header claims "
                                                  << shape_.height << " x " << shape_.width
                                                  << " images, empty or over the 1 GiB limit of "
                                                     "a shard record; the file is corrupt");
    // Labels take one byte per record: keep them all. Read in pieces, so that
    // memory follows the bytes actually there, not the count the header claims.
    constexpr int64_t kLabelChunk = int64_t{1} << 20;
    for (int64_t done = 0; done < count;) {
      const int64_t n = std::min(kLabelChunk, count - done);
      labels_.resize(static_cast<size_t>(done + n));
      b->read_exactly(labels_.data() + done, static_cast<size_t>(n),
                      "the label data (" + std::to_string(count) + " labels; from label " +
                          std::to_string(done) + ")");
      done += n;
    }
    int max_label = -1;
    for (uint8_t l : labels_) max_label = std::max<int>(max_label, l);
    if (!options.class_names.empty()) {
      class_names_ = options.class_names;
      CTMQ_CHECK(max_label < static_cast<int>(class_names_.size()),
                 "input " << b->path() << " has label " << max_label << " but only "
                          << class_names_.size() << " --class-names were given");
    } else {
      for (int i = 0; i <= max_label; ++i) class_names_.push_back(std::to_string(i));
    }
    nlohmann::ordered_json j;
    j["kind"] = "idx";
    j["inputs"] = {std::filesystem::absolute(images_->path()).lexically_normal().string(),
                   std::filesystem::absolute(b->path()).lexically_normal().string()};
    describe_ = j.dump();
  }

  ImageShape shape() const override { return shape_; }
  int64_t count() const override { return static_cast<int64_t>(labels_.size()); }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  std::string describe_json() const override { return describe_; }

  void seek(int64_t index) override {
    CTMQ_ASSERT(index >= 0 && index <= count());
    images_->seek(16 + index * shape_.pixels());
    next_ = index;
  }

  void read(SourceRecord& record) override {
    CTMQ_ASSERT(next_ < count());
    record.label = labels_[static_cast<size_t>(next_)];
    record.pixels.resize(static_cast<size_t>(shape_.pixels()));
    images_->read_exactly(record.pixels.data(), record.pixels.size(),
                          "image record " + std::to_string(next_));
    ++next_;
  }

 private:
  std::unique_ptr<GzFile> images_;
  ImageShape shape_;
  std::vector<uint8_t> labels_;
  std::vector<std::string> class_names_;
  std::string describe_;
  int64_t next_ = 0;
};

}  // namespace

std::unique_ptr<RecordSource> open_idx_source(const SourceOptions& options) {
  return std::make_unique<IdxSource>(options);
}

}  // namespace ctmq::data
