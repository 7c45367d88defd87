// Fuzzes the shard read side: the 64-byte header (data/shard_format.cc) and
// the records as ShardDataset reads them (data/shard_dataset.cc).
// Input: one flag byte, then a shard file. Checksums would stop almost every
// mutation at the first check, so the flags let the target repair them:
//   bit 0: rewrite the header's crc32 before decoding;
//   bit 1: rewrite every whole record's crc32 (after a header that decodes);
//   bit 2: cut or zero-pad the file to the size its header implies.
// Version 2 (encoded) shards: bit 1 rewrites the offset index's crc32 at the
// file's end instead (records keep theirs), bit 2 does nothing.
// A shard whose header decodes is then opened through a manifest that agrees
// with its header (record type included), and every record is read as one
// batch (encoded records: decoded and given the evaluation transform).
#include <algorithm>
#include <string>
#include <vector>

#include "ctmq/data/manifest.h"
#include "ctmq/data/shard_dataset.h"
#include "ctmq/data/shard_format.h"
#include "fuzz_support.h"

namespace {

namespace data = ctmq::data;

// Bounds that keep one execution small; larger headers are still decoded.
constexpr uint64_t kMaxRecords = 256;
constexpr int64_t kMaxChannels = 16;
constexpr int64_t kMaxEncodedOutput = 3 * 64 * 64;  // the delivered C x H x W of version 2

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* input, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = input[0];
  std::string bytes(reinterpret_cast<const char*>(input + 1), size - 1);
  if ((flags & 1) && bytes.size() >= data::kShardHeaderSize) {
    ctmq::encode_le32(bytes.data() + 52, data::crc32_of(bytes.data(), 52));
  }
  data::ShardHeader header;
  bool decoded = false;
  ctmq::fuzz::expect_errors_only([&] {
    header = data::decode_shard_header("shard-00000.ctmq", bytes.data(), bytes.size());
    decoded = true;
  });
  if (!decoded || !data::fits_in_a_record(header.shape) || header.shape.channels > kMaxChannels ||
      header.record_count == 0 || header.record_count > kMaxRecords) {
    return 0;
  }
  const bool encoded = header.record() == data::RecordKind::kEncoded;
  if (encoded && header.shape.pixels() > kMaxEncodedOutput) return 0;
  const int64_t record_bytes = data::record_size(header.shape);
  if (encoded && (flags & 2)) {
    const size_t entries = header.record_count + 1;
    if (bytes.size() >= data::kShardHeaderSize + entries * 8 + 4) {
      char* index = bytes.data() + bytes.size() - entries * 8 - 4;
      ctmq::encode_le32(index + entries * 8, data::crc32_of(index, entries * 8));
    }
  }
  if (!encoded && (flags & 4)) {
    bytes.resize(data::kShardHeaderSize + header.record_count * record_bytes, '\0');
  }
  if (!encoded && (flags & 2)) {
    for (size_t at = data::kShardHeaderSize; at + record_bytes <= bytes.size();
         at += record_bytes) {
      ctmq::encode_le32(bytes.data() + at + record_bytes - 4,
                        data::crc32_of(bytes.data() + at, static_cast<size_t>(record_bytes - 4)));
    }
  }
  data::Manifest m;
  m.shape = header.shape;
  m.record = header.record();
  if (encoded) {
    m.version = data::kManifestVersionEncoded;
    m.max_side = 256;
    m.jpeg_quality = 90;
    m.pixel_count = 1;
  }
  m.count = static_cast<int64_t>(header.record_count);
  m.records_per_shard = m.count;
  for (int i = 0; i < 10; ++i) m.class_names.push_back(std::to_string(i));
  m.class_counts.assign(10, 0);
  m.pixel_sum.assign(m.shape.channels, 0);
  m.pixel_sum_squares.assign(m.shape.channels, 0);
  m.mean.assign(m.shape.channels, 0.5);
  m.std.assign(m.shape.channels, 0.25);
  data::ShardEntry entry;
  entry.path = data::shard_file_name(0);
  entry.first_index = static_cast<int64_t>(header.first_index);
  entry.count = m.count;
  entry.bytes = static_cast<int64_t>(bytes.size());
  entry.crc32 = data::crc32_of(bytes.data(), bytes.size());
  m.shards.push_back(entry);
  const auto& dir = ctmq::fuzz::scratch();
  dir.write(entry.path, bytes);
  const std::string manifest_path = dir.write(data::kManifestName, data::manifest_to_json(m));
  ctmq::fuzz::expect_errors_only([&] {
    data::ShardDataset dataset(manifest_path);
    std::vector<int64_t> indices(static_cast<size_t>(dataset.size()));
    for (size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<int64_t>(i);
    data::Batch batch = dataset.get_batch(indices);
    if (batch.images.size(0) != dataset.size()) __builtin_trap();
  });
  return 0;
}
