// ImageFolder trees (torchvision layout): ROOT/CLASS/*.{png,jpg,jpeg}. Classes
// are the subdirectories sorted by name; files are sorted by name within a
// class. The extension (any case) selects the files; their signature decides
// how each is decoded (image_file.h).

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/common/log.h"
#include "ctmq/data/image_file.h"
#include "ctmq/data/image_transform.h"
#include "ctmq/data/jpeg_image.h"
#include "ctmq/data/record_source.h"

namespace ctmq::data {
namespace fs = std::filesystem;
namespace {

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

class ImageFolderSource : public RecordSource {
 public:
  explicit ImageFolderSource(const SourceOptions& options)
      : policy_(options.size_policy),
        record_(options.record),
        encoding_(options.encoding),
        root_(options.inputs.front()) {
    CTMQ_CHECK(options.inputs.size() == 1,
               "format image-folder takes one --input (the root directory), got "
                   << options.inputs.size());
    CTMQ_CHECK(options.channels == 1 || options.channels == 3,
               "--channels " << options.channels << " is not supported; use 1 (gray) or 3 (RGB)");
    CTMQ_CHECK(fs::is_directory(root_),
               "input " << root_
                        << " is not a directory; image-folder expects ROOT/CLASS/*.png "
                           "(or .jpg, .jpeg)");
    std::vector<fs::path> classes;
    for (const auto& entry : fs::directory_iterator(root_)) {
      if (entry.is_directory()) classes.push_back(entry.path());
    }
    std::sort(classes.begin(), classes.end());
    int64_t skipped = 0;
    for (size_t c = 0; c < classes.size(); ++c) {
      std::vector<std::string> names;
      for (const auto& entry : fs::directory_iterator(classes[c])) {
        if (entry.is_regular_file() && is_image_name(entry.path())) {
          names.push_back(entry.path().filename().string());
        } else {
          ++skipped;
        }
      }
      std::sort(names.begin(), names.end());
      for (auto& n : names) {
        files_.push_back(classes[c].filename().string() + "/" + n);
        labels_.push_back(static_cast<int32_t>(c));
      }
      class_names_.push_back(classes[c].filename().string());
    }
    if (skipped > 0)
      CTMQ_WARN("image-folder " << root_ << ": ignored " << skipped
                                << " entries that are not .png, .jpg or .jpeg files");
    CTMQ_CHECK(!files_.empty(),
               "input " << root_ << " holds no CLASS/*.png, *.jpg or *.jpeg files");
    if (!options.class_names.empty()) {
      CTMQ_CHECK(options.class_names.size() == class_names_.size(),
                 "--class-names gives " << options.class_names.size() << " names but " << root_
                                        << " has " << class_names_.size() << " class folders");
      class_names_ = options.class_names;
    }
    shape_.channels = options.channels;
    shape_.height = options.height;
    shape_.width = options.width;
    CTMQ_CHECK((shape_.height > 0) == (shape_.width > 0),
               "--image-size needs both a height and a width");
    if (record_ == RecordKind::kEncoded) {
      CTMQ_CHECK(shape_.height > 0,
                 "--record encoded needs --image-size HEIGHTxWIDTH, the size the reader delivers "
                 "(e.g. 224x224); the stored images keep their own sizes");
      CTMQ_CHECK(encoding_.max_side >= 0,
                 "--max-side " << encoding_.max_side << " must be >= 0 (0 = keep every file)");
      CTMQ_CHECK(encoding_.jpeg_quality >= 1 && encoding_.jpeg_quality <= 100,
                 "--jpeg-quality " << encoding_.jpeg_quality << " is outside 1..100");
    }
    if (shape_.height == 0) {
      // The records take the first image's size: decided from its header
      // before anything is allocated.
      read_image_size(path_of(0), shape_.height, shape_.width);
      CTMQ_CHECK(fits_in_a_record(shape_),
                 "image " << path_of(0) << " (the first in its folder, which sets the record size) "
                          << "claims " << shape_.width << " x " << shape_.height << " px with "
                          << shape_.channels << " channel(s), over the 1 GiB limit of a shard "
                          << "record; remove the file, or give --image-size HxW with "
                             "--size-mismatch resize");
    }
    nlohmann::ordered_json j;
    j["kind"] = "image-folder";
    j["inputs"] = {fs::absolute(root_).lexically_normal().string()};
    j["size_mismatch"] = policy_ == SizePolicy::kResize ? "resize" : "reject";
    describe_ = j.dump();
  }

  ImageShape shape() const override { return shape_; }
  int64_t count() const override { return static_cast<int64_t>(files_.size()); }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  std::string describe_json() const override { return describe_; }

  void seek(int64_t index) override {
    CTMQ_ASSERT(index >= 0 && index <= count());
    next_ = index;
  }

  void read(SourceRecord& record) override {
    CTMQ_ASSERT(next_ < count());
    const std::string path = path_of(next_);
    std::string bytes = read_file(path);
    if (record_ == RecordKind::kEncoded) {
      read_encoded(path, std::move(bytes), record);
      return;
    }
    if (policy_ == SizePolicy::kReject) {  // refuse before decoding
      int64_t height = 0, width = 0;
      read_image_size_bytes(bytes, path, height, width);
      CTMQ_CHECK(height == shape_.height && width == shape_.width, mismatch(path, height, width));
    }
    DecodedImage image = decode_image_bytes(bytes, path, shape_.channels);
    record.label = labels_[static_cast<size_t>(next_)];
    if (image.height == shape_.height && image.width == shape_.width) {
      record.pixels = std::move(image.pixels);
    } else {
      CTMQ_CHECK(policy_ == SizePolicy::kResize, mismatch(path, image.height, image.width));
      record.pixels = resize_image(image, shape_.height, shape_.width).pixels;
    }
    ++next_;
  }

 private:
  // The encoding policy (record_source.h, EncodingPolicy). The file is
  // decoded either way: a file that does not decode is refused here, not when
  // training reads it, and the statistics need its pixels.
  void read_encoded(const std::string& path, std::string bytes, SourceRecord& record) {
    DecodedImage image = decode_image_bytes(bytes, path, shape_.channels);
    const int64_t shorter = std::min(image.height, image.width);
    if (encoding_.max_side == 0 || shorter <= encoding_.max_side) {
      record.encoded = std::move(bytes);
    } else {
      int64_t height = 0, width = 0;
      shorter_side_size(image.height, image.width, encoding_.max_side, height, width);
      record.encoded =
          encode_jpeg(resize_image(image, height, width), encoding_.jpeg_quality, path);
      image = decode_jpeg_bytes(record.encoded, path, shape_.channels);  // what is stored
    }
    record.label = labels_[static_cast<size_t>(next_)];
    record.height = image.height;
    record.width = image.width;
    record.pixels = std::move(image.pixels);
    ++next_;
  }

  std::string mismatch(const std::string& path, int64_t height, int64_t width) const {
    std::ostringstream message;
    message << "image " << path << " is " << width << "x" << height
            << " (WxH) but the data set's images are " << shape_.width << "x" << shape_.height
            << "; pass --size-mismatch resize (or --image-size) to resize, or remove the image";
    return message.str();
  }

  std::string path_of(int64_t index) const {
    return (fs::path(root_) / files_[static_cast<size_t>(index)]).string();
  }

  SizePolicy policy_;
  RecordKind record_;
  EncodingPolicy encoding_;
  std::string root_;
  std::vector<std::string> files_;  // relative to root_
  std::vector<int32_t> labels_;
  std::vector<std::string> class_names_;
  ImageShape shape_;
  std::string describe_;
  int64_t next_ = 0;
};

}  // namespace

std::unique_ptr<RecordSource> open_image_folder_source(const SourceOptions& options) {
  return std::make_unique<ImageFolderSource>(options);
}

}  // namespace ctmq::data
