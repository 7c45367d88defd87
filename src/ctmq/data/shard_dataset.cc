#include "ctmq/data/shard_dataset.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "ctmq/common/error.h"
#include "ctmq/data/manifest.h"
#include "ctmq/data/shard_format.h"

namespace ctmq::data {

namespace {

// One open shard: a file descriptor kept for the dataset's lifetime, read
// with pread (no shared file offset, so concurrent readers are safe).
struct OpenShard {
  std::string path;
  int fd = -1;
  ShardHeader header;
};

}  // namespace

struct ShardDataset::State {
  std::string manifest_path;
  Manifest manifest;
  std::vector<OpenShard> shards;
  std::vector<int64_t> first_index;  // per shard, ascending
  int64_t record_bytes = 0;
  std::vector<double> mean_values, std_values;  // [C], what get_batch normalises with
  torch::Tensor mean;                           // float32 [1, C, 1, 1]
  torch::Tensor inv_std;

  void set_normalisation(const std::vector<double>& m, const std::vector<double>& s) {
    const int64_t c = static_cast<int64_t>(m.size());
    mean_values = m;
    std_values = s;
    mean = torch::tensor(std::vector<float>(m.begin(), m.end())).view({1, c, 1, 1});
    std::vector<float> inv(c);
    for (int64_t i = 0; i < c; ++i) inv[i] = s[i] > 0 ? static_cast<float>(1.0 / s[i]) : 1.f;
    inv_std = torch::tensor(inv).view({1, c, 1, 1});
  }

  ~State() {
    for (auto& s : shards) {
      if (s.fd >= 0) ::close(s.fd);
    }
  }
};

ShardDataset::ShardDataset(const std::string& manifest_path) : state_(std::make_unique<State>()) {
  State& st = *state_;
  st.manifest_path = manifest_path;
  st.manifest = load_manifest(manifest_path);
  const Manifest& m = st.manifest;
  st.record_bytes = record_size(m.shape);
  const std::filesystem::path dir = std::filesystem::path(manifest_path).parent_path();
  for (const auto& entry : m.shards) {
    OpenShard shard;
    shard.path = (dir / entry.path).string();
    shard.fd = ::open(shard.path.c_str(), O_RDONLY | O_CLOEXEC);
    CTMQ_CHECK(shard.fd >= 0, "shard " << shard.path << " named by manifest " << manifest_path
                                       << " cannot be opened (" << std::strerror(errno)
                                       << "); the data set is incomplete: rebuild it with "
                                          "ctmq-shard");
    st.shards.push_back(shard);  // owned by State from here on (closed by ~State)
    char bytes[kShardHeaderSize];
    ssize_t got = ::pread(shard.fd, bytes, kShardHeaderSize, 0);
    shard.header = decode_shard_header(shard.path, bytes, got < 0 ? 0 : static_cast<size_t>(got));
    struct stat info;
    CTMQ_CHECK(::fstat(shard.fd, &info) == 0, "cannot stat shard " << shard.path);
    const int64_t expected = kShardHeaderSize + entry.count * st.record_bytes;
    CTMQ_CHECK(info.st_size == expected, "shard " << shard.path << ": " << info.st_size
                                                  << " bytes, expected " << expected << " ("
                                                  << entry.count
                                                  << " records); the file is truncated or "
                                                     "damaged: rebuild it with ctmq-shard");
    CTMQ_CHECK(shard.header.shape == m.shape &&
                   static_cast<int64_t>(shard.header.record_count) == entry.count &&
                   static_cast<int64_t>(shard.header.first_index) == entry.first_index,
               "shard " << shard.path << ": header (shape, count or first index) disagrees with "
                        << manifest_path << "; the shard belongs to another build");
    st.shards.back().header = shard.header;
    st.first_index.push_back(entry.first_index);
  }
  st.set_normalisation(m.mean, m.std);
}

void ShardDataset::use_normalisation(const std::vector<double>& mean,
                                     const std::vector<double>& std_dev,
                                     const std::string& source) {
  const auto c = static_cast<size_t>(channels());
  CTMQ_CHECK(mean.size() == c && std_dev.size() == c,
             source << " normalises " << mean.size() << " channel(s) but the data set of "
                    << state_->manifest_path << " has " << c
                    << "; evaluate the network on data with its own channel count");
  state_->set_normalisation(mean, std_dev);
}

const std::vector<double>& ShardDataset::mean() const { return state_->mean_values; }
const std::vector<double>& ShardDataset::std_dev() const { return state_->std_values; }

ShardDataset::~ShardDataset() = default;
ShardDataset::ShardDataset(ShardDataset&&) noexcept = default;

int64_t ShardDataset::size() const { return state_->manifest.count; }
int64_t ShardDataset::channels() const { return state_->manifest.shape.channels; }
int64_t ShardDataset::height() const { return state_->manifest.shape.height; }
int64_t ShardDataset::width() const { return state_->manifest.shape.width; }
int64_t ShardDataset::num_classes() const {
  return static_cast<int64_t>(state_->manifest.class_names.size());
}
const std::vector<std::string>& ShardDataset::class_names() const {
  return state_->manifest.class_names;
}

torch::Tensor ShardDataset::normalized_black() const {
  return state_->mean.neg().mul(state_->inv_std).flatten();
}

Batch ShardDataset::get_batch(const std::vector<int64_t>& indices) const {
  const State& st = *state_;
  const ImageShape& shape = st.manifest.shape;
  const int64_t n = static_cast<int64_t>(indices.size());
  const int64_t pixels = shape.pixels();
  torch::Tensor raw = torch::empty({n, shape.channels, shape.height, shape.width}, torch::kUInt8);
  torch::Tensor labels = torch::empty({n}, torch::kInt64);
  uint8_t* raw_data = raw.data_ptr<uint8_t>();
  int64_t* label_data = labels.data_ptr<int64_t>();
  std::vector<char> record(static_cast<size_t>(st.record_bytes));
  const int64_t num_classes = static_cast<int64_t>(st.manifest.class_names.size());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t index = indices[i];
    CTMQ_CHECK(index >= 0 && index < st.manifest.count,
               "record index " << index << " is outside data set " << st.manifest_path << " of "
                               << st.manifest.count << " records");
    auto it = std::upper_bound(st.first_index.begin(), st.first_index.end(), index);
    const size_t s = static_cast<size_t>(it - st.first_index.begin()) - 1;
    const OpenShard& shard = st.shards[s];
    const int64_t local = index - st.first_index[s];
    const off_t offset = kShardHeaderSize + local * st.record_bytes;
    ssize_t got = ::pread(shard.fd, record.data(), record.size(), offset);
    CTMQ_CHECK(got == static_cast<ssize_t>(record.size()),
               "shard " << shard.path << ": record " << local << " (data set index " << index
                        << ") cannot be read (" << (got < 0 ? std::strerror(errno) : "short read")
                        << "); the file is truncated: rebuild it with ctmq-shard");
    const uint32_t stored = get_u32(record.data() + 4 + pixels);
    const uint32_t computed = crc32_of(record.data(), static_cast<size_t>(4 + pixels));
    CTMQ_CHECK(stored == computed, "shard "
                                       << shard.path << ": record " << local << " (data set index "
                                       << index << ") fails its checksum (stored "
                                       << crc32_hex(stored) << ", computed " << crc32_hex(computed)
                                       << "); the file is corrupt: rebuild it with ctmq-shard");
    const int32_t label = static_cast<int32_t>(get_u32(record.data()));
    CTMQ_CHECK(label >= 0 && label < num_classes,
               "shard " << shard.path << ": record " << local << " has label " << label
                        << " outside [0, " << num_classes << ")");
    label_data[i] = label;
    std::memcpy(raw_data + i * pixels, record.data() + 4, static_cast<size_t>(pixels));
  }
  Batch batch;
  batch.images = raw.to(torch::kFloat32).mul_(1.f / 255.f).sub_(st.mean).mul_(st.inv_std);
  batch.labels = labels;
  return batch;
}

}  // namespace ctmq::data
