// The on-disk shard format shared by ShardWriter and ShardDataset; the
// specification is docs/shard-format.md (keep the two in step).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ctmq/common/byte_coding.h"
#include "ctmq/common/checksum.h"
#include "ctmq/common/enum_names.h"

namespace ctmq::data {

inline constexpr char kShardMagic[8] = {'C', 'T', 'M', 'Q', 'S', 'H', 'R', 'D'};
// Two record types (docs/shard-format.md): version 1 shards hold fixed-size
// raw uint8 records, version 2 shards encoded (PNG/JPEG) records of any size
// behind an offset index. kShardVersion and kManifestVersion are the newest a
// reader accepts; writers write the version of their record type.
enum class RecordKind {
  kFixed,    // version 1: raw uint8 CHW pixels, every record the same size
  kEncoded,  // version 2: the image file's bytes, variable size
};
inline constexpr EnumTable<RecordKind, 2> kRecordKindNames{{
    {RecordKind::kFixed, "fixed"},
    {RecordKind::kEncoded, "encoded"},
}};
RecordKind parse_record_kind(const std::string& text);  // "fixed" | "encoded"
std::string record_kind_name(RecordKind kind);

inline constexpr uint32_t kShardVersionFixed = 1;
inline constexpr uint32_t kShardVersionEncoded = 2;
inline constexpr uint32_t kShardVersion = kShardVersionEncoded;
inline constexpr uint32_t kShardHeaderSize = 64;
inline constexpr uint32_t kDtypeUint8 = 1;
inline constexpr uint32_t kDtypeEncoded = 2;
inline constexpr int kManifestVersionFixed = 1;
inline constexpr int kManifestVersionEncoded = 2;
inline constexpr int kManifestVersion = kManifestVersionEncoded;
inline uint32_t shard_version_of(RecordKind kind) {
  return kind == RecordKind::kEncoded ? kShardVersionEncoded : kShardVersionFixed;
}
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

// Version 2 (encoded): bytes of one record besides its image bytes (label
// and crc32), and the size of the offset index that ends a shard of `count`
// records ((count + 1) uint64 offsets and their crc32).
inline constexpr int64_t kEncodedRecordOverhead = 8;
inline int64_t encoded_index_size(int64_t count) { return (count + 1) * 8 + 4; }

struct ShardHeader {
  uint32_t version = kShardVersionFixed;  // kShardVersionEncoded for RecordKind::kEncoded
  ImageShape shape;
  uint64_t record_count = 0;
  uint64_t first_index = 0;
  RecordKind record() const {
    return version == kShardVersionEncoded ? RecordKind::kEncoded : RecordKind::kFixed;
  }
};

// Serialises `header` into exactly kShardHeaderSize bytes (with its crc32).
std::string encode_shard_header(const ShardHeader& header);

// Parses and validates the first kShardHeaderSize bytes of `path` (the name is
// used in error messages): magic, version (newer is refused), header crc,
// dtype and record size of its version (version 2: dtype 2, record size 0;
// its shape is the delivered one). Throws ctmq::Error naming `path`.
ShardHeader decode_shard_header(const std::string& path, const char* bytes, size_t size);

// The checksum helpers live in common/checksum.h and the little-endian coding
// of the format's integers in common/byte_coding.h (one of each for every format).
using ctmq::crc32_hex;
using ctmq::crc32_of;
using ctmq::parse_crc32_hex;

// The file name of shard `index` ("shard-00012.ctmq").
std::string shard_file_name(int64_t index);

}  // namespace ctmq::data
