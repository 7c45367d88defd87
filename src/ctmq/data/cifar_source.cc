// CIFAR-10 / CIFAR-100 binary batches: fixed-size records of label byte(s)
// followed by 3x32x32 planar pixels (the layout of the shard records).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ctmq/common/error.h"
#include "ctmq/data/record_source.h"

namespace ctmq::data {
namespace {

constexpr int64_t kCifarPixels = 3 * 32 * 32;

std::vector<std::string> read_names(const std::string& path) {
  std::vector<std::string> names;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

class CifarSource : public RecordSource {
 public:
  explicit CifarSource(const SourceOptions& options)
      : label_bytes_(options.kind == SourceKind::kCifar100 ? 2 : 1),
        classes_(options.kind == SourceKind::kCifar100 ? 100 : 10) {
    const int64_t stride = label_bytes_ + kCifarPixels;
    nlohmann::ordered_json inputs = nlohmann::ordered_json::array();
    for (const auto& path : options.inputs) {
      std::error_code ec;
      auto size = std::filesystem::file_size(path, ec);
      CTMQ_CHECK(!ec,
                 "input " << path << " cannot be read (" << ec.message() << "); check --input");
      CTMQ_CHECK(size > 0 && size % stride == 0,
                 "input " << path << ": " << size << " bytes is not a whole number of " << stride
                          << "-byte " << source_kind_name(options.kind)
                          << " records; the file is truncated or not a CIFAR binary batch");
      files_.push_back(path);
      file_first_.push_back(count_);
      count_ += static_cast<int64_t>(size) / stride;
      inputs.push_back(std::filesystem::absolute(path).lexically_normal().string());
    }
    class_names_ = options.class_names;
    if (class_names_.empty()) {
      auto dir = std::filesystem::path(options.inputs.front()).parent_path();
      auto meta = dir / (classes_ == 10 ? "batches.meta.txt" : "fine_label_names.txt");
      if (std::filesystem::exists(meta)) class_names_ = read_names(meta.string());
      if (class_names_.size() != static_cast<size_t>(classes_)) {
        class_names_.clear();
        for (int i = 0; i < classes_; ++i) class_names_.push_back(std::to_string(i));
      }
    }
    CTMQ_CHECK(class_names_.size() == static_cast<size_t>(classes_),
               source_kind_name(options.kind)
                   << " has " << classes_ << " classes but " << class_names_.size()
                   << " --class-names were given");
    nlohmann::ordered_json j;
    j["kind"] = source_kind_name(options.kind);
    j["inputs"] = inputs;
    describe_ = j.dump();
  }
  ~CifarSource() override { close(); }

  ImageShape shape() const override { return {3, 32, 32}; }
  int64_t count() const override { return count_; }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  std::string describe_json() const override { return describe_; }

  void seek(int64_t index) override {
    CTMQ_ASSERT(index >= 0 && index <= count_);
    next_ = index;
    close();
  }

  void read(SourceRecord& record) override {
    CTMQ_ASSERT(next_ < count_);
    size_t f = files_.size() - 1;
    while (file_first_[f] > next_) --f;
    if (!file_ || f != file_index_) {
      close();
      file_ = std::fopen(files_[f].c_str(), "rb");
      CTMQ_CHECK(file_, "input " << files_[f] << " cannot be opened");
      file_index_ = f;
      const long offset =
          static_cast<long>((next_ - file_first_[f]) * (label_bytes_ + kCifarPixels));
      CTMQ_CHECK(std::fseek(file_, offset, SEEK_SET) == 0,
                 "input " << files_[f] << ": cannot seek");
    }
    unsigned char labels[2];
    record.pixels.resize(kCifarPixels);
    const int64_t local = next_ - file_first_[f];
    CTMQ_CHECK(std::fread(labels, 1, label_bytes_, file_) == static_cast<size_t>(label_bytes_) &&
                   std::fread(record.pixels.data(), 1, kCifarPixels, file_) == kCifarPixels,
               "input " << files_[f] << ": record " << local << " cannot be read (truncated?)");
    // CIFAR-100 records hold the coarse label, then the fine label: use fine.
    record.label = labels[label_bytes_ - 1];
    CTMQ_CHECK(record.label < classes_, "input " << files_[f] << ": record " << local
                                                 << " has label " << record.label << ", expected < "
                                                 << classes_);
    ++next_;
  }

 private:
  void close() {
    if (file_) std::fclose(file_);
    file_ = nullptr;
  }

  int label_bytes_;
  int classes_;
  std::vector<std::string> files_;
  std::vector<int64_t> file_first_;
  int64_t count_ = 0;
  std::vector<std::string> class_names_;
  std::string describe_;
  int64_t next_ = 0;
  std::FILE* file_ = nullptr;
  size_t file_index_ = 0;
};

}  // namespace

std::unique_ptr<RecordSource> open_cifar_source(const SourceOptions& options) {
  return std::make_unique<CifarSource>(options);
}

}  // namespace ctmq::data
