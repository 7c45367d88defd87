#include "ctmq/data/shard_format.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <limits>

#include "ctmq/common/error.h"

namespace ctmq::data {

std::string shard_file_name(int64_t index) {
  char name[32];
  std::snprintf(name, sizeof(name), "shard-%05lld", static_cast<long long>(index));
  return std::string(name) + kShardSuffix;
}

RecordKind parse_record_kind(const std::string& text) {
  return parse_enum(kRecordKindNames, text, "--record", "fixed: raw pixels; encoded: JPEG/PNG");
}
std::string record_kind_name(RecordKind kind) { return enum_name(kRecordKindNames, kind); }

std::string encode_shard_header(const ShardHeader& header) {
  std::string bytes(kShardHeaderSize, '\0');
  char* out = bytes.data();
  std::memcpy(out, kShardMagic, 8);
  encode_le32(out + 8, header.version);
  encode_le32(out + 12, kShardHeaderSize);
  encode_le32(out + 16, static_cast<uint32_t>(header.shape.channels));
  encode_le32(out + 20, static_cast<uint32_t>(header.shape.height));
  encode_le32(out + 24, static_cast<uint32_t>(header.shape.width));
  const bool encoded = header.record() == RecordKind::kEncoded;
  encode_le32(out + 28, encoded ? kDtypeEncoded : kDtypeUint8);
  encode_le64(out + 32, header.record_count);
  encode_le64(out + 40, header.first_index);
  encode_le32(out + 48, encoded ? 0u : static_cast<uint32_t>(record_size(header.shape)));
  encode_le32(out + 52, crc32_of(out, 52));
  return bytes;
}

ShardHeader decode_shard_header(const std::string& path, const char* bytes, size_t size) {
  CTMQ_CHECK(size >= kShardHeaderSize, "shard "
                                           << path << ": only " << size
                                           << " bytes, shorter than the " << kShardHeaderSize
                                           << "-byte header; the file is truncated: rebuild it "
                                              "with ctmq-shard");
  CTMQ_CHECK(
      std::memcmp(bytes, kShardMagic, 8) == 0,
      "shard " << path << ": wrong magic (expected CTMQSHRD); this is not a ctmq shard file");
  ShardHeader header;
  header.version = decode_le32(bytes + 8);
  CTMQ_CHECK(header.version <= kShardVersionEncoded,
             "shard " << path << ": format version " << header.version
                      << " was written by a newer ctmq-shard; this ctmq reads up to version "
                      << kShardVersionEncoded << ": upgrade ctmq");
  CTMQ_CHECK(header.version >= 1, "shard " << path << ": invalid format version 0");
  CTMQ_CHECK(decode_le32(bytes + 52) == crc32_of(bytes, 52),
             "shard " << path
                      << ": header checksum mismatch; the file is corrupt: rebuild it with "
                         "ctmq-shard");
  CTMQ_CHECK(decode_le32(bytes + 12) == kShardHeaderSize,
             "shard " << path << ": header size " << decode_le32(bytes + 12) << ", expected "
                      << kShardHeaderSize);
  header.shape.channels = decode_le32(bytes + 16);
  header.shape.height = decode_le32(bytes + 20);
  header.shape.width = decode_le32(bytes + 24);
  const bool encoded = header.record() == RecordKind::kEncoded;
  const uint32_t dtype = encoded ? kDtypeEncoded : kDtypeUint8;
  CTMQ_CHECK(decode_le32(bytes + 28) == dtype,
             "shard " << path << ": dtype " << decode_le32(bytes + 28) << " is not " << dtype
                      << ", the dtype of version " << header.version
                      << " (1 = uint8, 2 = encoded); the file is corrupt");
  // fits_in_a_record before pixels(): three 32-bit sizes may overflow it.
  CTMQ_CHECK(fits_in_a_record(header.shape),
             "shard " << path << ": image shape " << header.shape.channels << " x "
                      << header.shape.height << " x " << header.shape.width
                      << " is empty or over the 1 GiB limit of a record; the file is corrupt");
  header.record_count = decode_le64(bytes + 32);
  header.first_index = decode_le64(bytes + 40);
  CTMQ_CHECK(decode_le32(bytes + 48) == (encoded ? 0 : record_size(header.shape)),
             "shard " << path << ": record size " << decode_le32(bytes + 48)
                      << " does not match the shape");
  return header;
}

}  // namespace ctmq::data
