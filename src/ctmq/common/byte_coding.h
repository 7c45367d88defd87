// Fixed-width unsigned integers in byte buffers, whatever the host's byte
// order: the one place where ctmq packs and unpacks the integers of its own
// binary formats, all little-endian (shards: docs/shard-format.md; the sealed
// footer of checkpoints, network files and packed models:
// common/sealed_file.h; the packed model header: docs/packed-format.md), and
// reads the big-endian ones of other formats (IDX and PNG headers, pickle's
// BINFLOAT). After leveldb's util/coding.h (EncodeFixed32, DecodeFixed64);
// the checksum that goes with it is common/checksum.h.
//
// encode_*: writes exactly N bytes at `out`; append_*: appends them to a
// string; decode_*: reads exactly N bytes at `in`. REQUIRES: the N bytes
// exist (the caller checks sizes; nothing here throws).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ctmq {

// Little-endian, `bytes` in [0, 8] (pickle's LONG1 has any length up to 8):
// bytes[0] is the least significant.
inline uint64_t decode_le(const void* in, size_t bytes) {
  const auto* b = static_cast<const unsigned char*>(in);
  uint64_t value = 0;
  for (size_t i = bytes; i-- > 0;) value = (value << 8) | b[i];
  return value;
}
inline uint16_t decode_le16(const void* in) { return static_cast<uint16_t>(decode_le(in, 2)); }
inline uint32_t decode_le32(const void* in) { return static_cast<uint32_t>(decode_le(in, 4)); }
inline uint64_t decode_le64(const void* in) { return decode_le(in, 8); }

// Little-endian, `bytes` in [0, 8]: the low `bytes` bytes of `value`.
inline void encode_le(void* out, uint64_t value, size_t bytes) {
  auto* b = static_cast<unsigned char*>(out);
  for (size_t i = 0; i < bytes; ++i) b[i] = static_cast<unsigned char>((value >> (8 * i)) & 0xff);
}
inline void encode_le32(void* out, uint32_t value) { encode_le(out, value, 4); }
inline void encode_le64(void* out, uint64_t value) { encode_le(out, value, 8); }

inline void append_le(std::string& out, uint64_t value, size_t bytes) {
  char b[8];
  encode_le(b, value, bytes);
  out.append(b, bytes);
}
inline void append_le32(std::string& out, uint32_t value) { append_le(out, value, 4); }
inline void append_le64(std::string& out, uint64_t value) { append_le(out, value, 8); }

// Big-endian (network byte order): bytes[0] is the most significant.
inline uint64_t decode_be(const void* in, size_t bytes) {
  const auto* b = static_cast<const unsigned char*>(in);
  uint64_t value = 0;
  for (size_t i = 0; i < bytes; ++i) value = (value << 8) | b[i];
  return value;
}
inline uint32_t decode_be32(const void* in) { return static_cast<uint32_t>(decode_be(in, 4)); }
inline uint64_t decode_be64(const void* in) { return decode_be(in, 8); }

}  // namespace ctmq
