// Write side of the shard format (docs/shard-format.md): one shard file.
//
// Records go to a temporary file next to the final path; finish() checks the
// record count, fsyncs and renames, so a shard either exists complete or not
// at all. Destroying an unfinished writer removes the temporary file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "ctmq/data/shard_format.h"

namespace ctmq::data {

// What a finished shard holds; the merge step sums these.
struct ShardSummary {
  std::string path;  // the final path
  int64_t first_index = 0;
  int64_t count = 0;
  int64_t bytes = 0;
  uint32_t crc32 = 0;                       // of the whole file
  std::vector<int64_t> class_counts;        // per class
  std::vector<uint64_t> pixel_sum;          // per channel
  std::vector<uint64_t> pixel_sum_squares;  // per channel
  uint64_t pixel_count = 0;                 // pixels per channel summed over the records
};

class ShardWriter {
 public:
  // REQUIRES: count > 0, num_classes > 0. `record` selects the shard version:
  // kFixed takes add(), kEncoded add_encoded() (`shape` is then the size the
  // reader delivers).
  ShardWriter(std::string final_path, ImageShape shape, int64_t first_index, int64_t count,
              int64_t num_classes, RecordKind record = RecordKind::kFixed);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Appends one record: `pixels` holds shape.pixels() bytes in CHW order.
  // `where` names the input record in errors (e.g. "input X record 12").
  void add(int32_t label, const uint8_t* pixels, const std::string& where);
  // Appends one encoded record (kEncoded): the image file's `bytes`, and its
  // decode `pixels` (shape.channels x height x width, CHW) for the statistics.
  void add_encoded(int32_t label, const std::string& bytes, const uint8_t* pixels, int64_t height,
                   int64_t width, const std::string& where);
  // Publishes the shard. Throws ctmq::Error unless exactly `count` records
  // were added.
  ShardSummary finish();

 private:
  void write(const void* data, size_t size);
  void check_label(int32_t label, const std::string& where) const;
  void add_statistics(const uint8_t* pixels, int64_t plane);

  ShardSummary summary_;
  ImageShape shape_;
  std::string temporary_path_;
  std::FILE* file_ = nullptr;
  RecordKind kind_;
  std::vector<char> record_;
  std::vector<uint64_t> offsets_;  // kEncoded: start of every record so far, then the end
  int64_t added_ = 0;
};

}  // namespace ctmq::data
