// The on-disk shard format shared by ShardWriter and ShardDataset; the
// specification is docs/shard-format.md (keep the two in step).
#pragma once

#include <cstdint>
#include <string>

#include "ctmq/common/checksum.h"

namespace ctmq::data {

inline constexpr char kShardMagic[8] = {'C', 'T', 'M', 'Q', 'S', 'H', 'R', 'D'};
inline constexpr uint32_t kShardVersion = 1;
inline constexpr uint32_t kShardHeaderSize = 64;
inline constexpr uint32_t kDtypeUint8 = 1;
inline constexpr int kManifestVersion = 1;
inline constexpr const char* kManifestName = "manifest.json";
inline constexpr const char* kShardSuffix = ".ctmq";
inline constexpr const char* kPartSuffix = ".part.json";

// Shape of one record's image (uint8 pixels, planar CHW).
struct ImageShape {
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
  int64_t pixels() const { return channels * height * width; }
  bool operator==(const ImageShape& o) const {
    return channels == o.channels && height == o.height && width == o.width;
  }
  bool operator!=(const ImageShape& o) const { return !(*this == o); }
};

// Bytes of one record: int32 label, pixels, crc32.
inline int64_t record_size(const ImageShape& shape) { return 4 + shape.pixels() + 4; }

// The largest image a record may hold (1 GiB of pixels, the same limit as PNG
// decoding): shapes are checked against it, from headers, before anything is
// allocated or written.
inline constexpr int64_t kMaxRecordPixels = int64_t{1} << 30;
inline bool fits_in_a_record(const ImageShape& s) {
  return s.channels > 0 && s.height > 0 && s.width > 0 && s.height <= kMaxRecordPixels &&
         s.width <= kMaxRecordPixels && s.channels <= kMaxRecordPixels &&
         static_cast<double>(s.channels) * static_cast<double>(s.height) *
                 static_cast<double>(s.width) <=
             static_cast<double>(kMaxRecordPixels);
}

struct ShardHeader {
  uint32_t version = kShardVersion;
  ImageShape shape;
  uint64_t record_count = 0;
  uint64_t first_index = 0;
};

// Serialises `header` into exactly kShardHeaderSize bytes (with its crc32).
std::string encode_shard_header(const ShardHeader& header);

// Parses and validates the first kShardHeaderSize bytes of `path` (the name is
// used in error messages): magic, version (newer is refused), header crc,
// dtype, record size. Throws ctmq::Error naming `path`.
ShardHeader decode_shard_header(const std::string& path, const char* bytes, size_t size);

// The checksum helpers live in common/checksum.h (one for every format).
using ctmq::crc32_hex;
using ctmq::crc32_of;
using ctmq::parse_crc32_hex;

// The file name of shard `index` ("shard-00012.ctmq").
std::string shard_file_name(int64_t index);

// Little-endian helpers.
void put_u32(char* out, uint32_t value);
void put_u64(char* out, uint64_t value);
uint32_t get_u32(const char* in);
uint64_t get_u64(const char* in);

}  // namespace ctmq::data
