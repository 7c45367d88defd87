#include "ctmq/data/shard_dataset.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>

#include "ctmq/common/error.h"
#include "ctmq/data/image_file.h"
#include "ctmq/data/image_transform.h"
#include "ctmq/data/jpeg_image.h"
#include "ctmq/data/manifest.h"
#include "ctmq/data/shard_file.h"
#include "ctmq/data/shard_format.h"

namespace ctmq::data {

struct ShardDataset::State {
  std::string manifest_path;
  Manifest manifest;
  std::vector<ShardFile> shards;
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
};

ShardDataset::ShardDataset(const std::string& manifest_path) : state_(std::make_unique<State>()) {
  State& st = *state_;
  st.manifest_path = manifest_path;
  st.manifest = load_manifest(manifest_path);
  const Manifest& m = st.manifest;
  st.record_bytes = record_size(m.shape);
  const std::filesystem::path dir = std::filesystem::path(manifest_path).parent_path();
  for (const auto& entry : m.shards) {
    ShardFile shard((dir / entry.path).string(), "manifest " + manifest_path);
    const ShardHeader& header = shard.header();
    CTMQ_CHECK(header.record() == m.record,
               "shard " << shard.path() << " holds " << record_kind_name(header.record())
                        << " records but " << manifest_path << " says "
                        << record_kind_name(m.record) << "; the shard belongs to another build");
    const int64_t expected = m.record == RecordKind::kEncoded
                                 ? shard.file_size()
                                 : kShardHeaderSize + entry.count * st.record_bytes;
    CTMQ_CHECK(shard.file_size() == expected,
               "shard " << shard.path() << ": " << shard.file_size() << " bytes, expected "
                        << expected << " (" << entry.count
                        << " records); the file is truncated or damaged: rebuild it with "
                           "ctmq-shard");
    CTMQ_CHECK(header.shape == m.shape &&
                   static_cast<int64_t>(header.record_count) == entry.count &&
                   static_cast<int64_t>(header.first_index) == entry.first_index,
               "shard " << shard.path() << ": header (shape, count or first index) disagrees with "
                        << manifest_path << "; the shard belongs to another build");
    if (m.record == RecordKind::kEncoded) shard.read_offset_index();
    st.shards.push_back(std::move(shard));
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

RecordKind ShardDataset::record() const { return state_->manifest.record; }

namespace {

// One record read and checked: its label and the bytes between the label and
// the checksum (raw pixels, or an image file), in `buffer`.
struct RecordBytes {
  int32_t label = 0;
  const char* payload = nullptr;
  size_t payload_size = 0;
  std::string where;  // "shard P: record R (data set index I)"
};

}  // namespace

// Shared by both record types: locate, one pread, checksum and label checks.
static RecordBytes read_record(const std::string& manifest_path, const Manifest& manifest,
                               const std::vector<ShardFile>& shards,
                               const std::vector<int64_t>& first_index, int64_t record_bytes,
                               int64_t index, std::vector<char>& buffer) {
  CTMQ_CHECK(index >= 0 && index < manifest.count,
             "record index " << index << " is outside data set " << manifest_path << " of "
                             << manifest.count << " records");
  auto it = std::upper_bound(first_index.begin(), first_index.end(), index);
  const size_t s = static_cast<size_t>(it - first_index.begin()) - 1;
  const ShardFile& shard = shards[s];
  const int64_t local = index - first_index[s];
  RecordBytes out;
  out.where = "shard " + shard.path() + ": record " + std::to_string(local) + " (data set index " +
              std::to_string(index) + ")";
  uint64_t offset = kShardHeaderSize + local * record_bytes;
  size_t size = static_cast<size_t>(record_bytes);
  if (manifest.record == RecordKind::kEncoded) {
    offset = shard.offsets()[static_cast<size_t>(local)];
    size = static_cast<size_t>(shard.offsets()[static_cast<size_t>(local) + 1] - offset);
  }
  buffer.resize(size);
  shard.read_at(offset, size, buffer.data(), out.where);
  const uint32_t stored = decode_le32(buffer.data() + size - 4);
  const uint32_t computed = crc32_of(buffer.data(), size - 4);
  CTMQ_CHECK(stored == computed, out.where << " fails its checksum (stored " << crc32_hex(stored)
                                           << ", computed " << crc32_hex(computed)
                                           << "); the file is corrupt: rebuild it with ctmq-shard");
  out.label = static_cast<int32_t>(decode_le32(buffer.data()));
  const int64_t num_classes = static_cast<int64_t>(manifest.class_names.size());
  CTMQ_CHECK(out.label >= 0 && out.label < num_classes,
             out.where << " has label " << out.label << " outside [0, " << num_classes << ")");
  out.payload = buffer.data() + 4;
  out.payload_size = size - 8;
  return out;
}

// Reads `indices` into a uint8 batch: `fill(i, index, record, out)` writes
// record `index` (read and checked) as C x H x W bytes to `out`; then the
// batch is normalised.
template <typename Fill>
static Batch load_batch(const ShardDataset& dataset, const std::vector<int64_t>& indices,
                        const torch::Tensor& mean, const torch::Tensor& inv_std,
                        const std::function<RecordBytes(int64_t, std::vector<char>&)>& read,
                        Fill fill) {
  const int64_t n = static_cast<int64_t>(indices.size());
  const int64_t c = dataset.channels(), h = dataset.height(), w = dataset.width();
  torch::Tensor raw = torch::empty({n, c, h, w}, torch::kUInt8);
  torch::Tensor labels = torch::empty({n}, torch::kInt64);
  uint8_t* raw_data = raw.data_ptr<uint8_t>();
  int64_t* label_data = labels.data_ptr<int64_t>();
  std::vector<char> buffer;
  for (int64_t i = 0; i < n; ++i) {
    const RecordBytes record = read(indices[i], buffer);
    label_data[i] = record.label;
    fill(indices[i], record, raw_data + i * c * h * w);
  }
  Batch batch;
  batch.images = raw.to(torch::kFloat32).mul_(1.f / 255.f).sub_(mean).mul_(inv_std);
  batch.labels = labels;
  return batch;
}

// The stored image of an encoded record, decoded to `channels`.
// Decodes `record` to `channels` and returns `transform(view)` of it. A JPEG
// whose conversion libjpeg-turbo does itself stays in the decoder's
// interleaved layout (decode_jpeg_interleaved, into a buffer reused by the
// thread), which saves copying every pixel into planes before the crop and
// resize read a part of them; anything else is decode_image_bytes's planes.
template <class Transform>
static DecodedImage decode_record(const RecordBytes& record, int64_t channels,
                                  const Transform& transform) {
  // The decoders name their argument as "image <where> is not a valid JPEG ...".
  const std::string bytes(record.payload, record.payload_size);
  if (has_jpeg_signature(bytes)) {
    thread_local std::vector<uint8_t> pixels;
    int64_t height = 0, width = 0;
    if (decode_jpeg_interleaved(bytes, record.where, channels, pixels, height, width))
      return transform(ImageView{pixels.data(), channels, height, width, true});
  }
  return transform(view_of(decode_image_bytes(bytes, record.where, channels)));
}

static void copy_image(const DecodedImage& image, uint8_t* out) {
  std::memcpy(out, image.pixels.data(), image.pixels.size());
}

Batch ShardDataset::get_batch(const std::vector<int64_t>& indices) const {
  const State& st = *state_;
  auto read = [&st](int64_t index, std::vector<char>& buffer) {
    return read_record(st.manifest_path, st.manifest, st.shards, st.first_index, st.record_bytes,
                       index, buffer);
  };
  const int64_t c = channels(), h = height(), w = width();
  if (st.manifest.record == RecordKind::kFixed) {
    return load_batch(*this, indices, st.mean, st.inv_std, read,
                      [](int64_t, const RecordBytes& record, uint8_t* out) {
                        std::memcpy(out, record.payload, record.payload_size);
                      });
  }
  return load_batch(*this, indices, st.mean, st.inv_std, read,
                    [c, h, w](int64_t, const RecordBytes& record, uint8_t* out) {
                      copy_image(decode_record(record, c,
                                               [&](const ImageView& image) {
                                                 return eval_transform(image, h, w);
                                               }),
                                 out);
                    });
}

Batch ShardDataset::get_training_batch(const std::vector<int64_t>& indices, int64_t epoch,
                                       const AugmentOptions& augment) const {
  const State& st = *state_;
  const bool encoded = st.manifest.record == RecordKind::kEncoded;
  switch (augment.kind) {
    case Augment::kNone:
      return get_batch(indices);
    case Augment::kCropFlip: {
      CTMQ_CHECK(!encoded, "--augment crop-flip pads and crops fixed-size records, but "
                               << st.manifest_path
                               << " holds encoded (JPEG/PNG) records: use --augment "
                                  "random-resized-crop, or none for the evaluation transform");
      Batch batch = get_batch(indices);
      batch.images = augment_batch(batch.images, indices, epoch, normalized_black(), augment);
      return batch;
    }
    case Augment::kRandomResizedCrop:
      break;
  }
  CTMQ_CHECK(encoded,
             "--augment random-resized-crop crops the stored images of an encoded data "
             "set (ctmq-shard --record encoded), but "
                 << st.manifest_path
                 << " holds fixed-size records: use --augment crop-flip or none");
  auto read = [&st](int64_t index, std::vector<char>& buffer) {
    return read_record(st.manifest_path, st.manifest, st.shards, st.first_index, st.record_bytes,
                       index, buffer);
  };
  const int64_t c = channels(), h = height(), w = width();
  return load_batch(*this, indices, st.mean, st.inv_std, read,
                    [&](int64_t index, const RecordBytes& record, uint8_t* out) {
                      DecodedImage crop = decode_record(record, c, [&](const ImageView& image) {
                        const CropBox box =
                            random_resized_crop(augment, epoch, index, image.height, image.width);
                        DecodedImage resized =
                            resize_region(image, box.top, box.left, box.height, box.width, h, w);
                        if (box.flip) flip_horizontally(resized);
                        return resized;
                      });
                      copy_image(crop, out);
                    });
}

}  // namespace ctmq::data
