#include "ctmq/common/sealed_file.h"

#include <cstring>

#include "ctmq/common/byte_coding.h"
#include "ctmq/common/checksum.h"
#include "ctmq/common/error.h"

namespace ctmq {

std::string seal(std::string payload, const SealKind& kind, uint32_t version) {
  const uint64_t size = payload.size();
  const uint32_t crc = crc32_of(payload.data(), payload.size());
  payload.append(kind.magic, 8);
  append_le64(payload, size);
  append_le32(payload, crc);
  append_le32(payload, version);
  return payload;
}

bool has_seal(const std::string& bytes, const SealKind& kind) {
  return bytes.size() >= kSealBytes &&
         std::memcmp(bytes.data() + bytes.size() - kSealBytes, kind.magic, 8) == 0;
}

Unsealed unseal(const std::string& bytes, const SealKind& kind, const std::string& path,
                uint32_t oldest_version, uint32_t newest_version) {
  CTMQ_CHECK(bytes.size() > kSealBytes,
             kind.name << " " << path << " is truncated (" << bytes.size() << " bytes)");
  CTMQ_CHECK(has_seal(bytes, kind), kind.name << " " << path
                                              << " has no valid footer (truncated or not a ctmq "
                                              << kind.name << ")");
  const char* footer = bytes.data() + bytes.size() - kSealBytes;
  Unsealed u;
  const uint64_t size = decode_le64(footer + 8);
  const auto crc = decode_le32(footer + 16);
  u.version = decode_le32(footer + 20);
  CTMQ_CHECK(size == bytes.size() - kSealBytes, kind.name << " " << path << ": footer says " << size
                                                          << " bytes, found "
                                                          << bytes.size() - kSealBytes);
  u.payload_size = static_cast<size_t>(size);
  const uint32_t computed = crc32_of(bytes.data(), u.payload_size);
  CTMQ_CHECK(computed == crc, kind.name << " " << path << " fails its checksum (CRC-32 stored "
                                        << crc32_hex(crc) << ", computed " << crc32_hex(computed)
                                        << "): the file is corrupt");
  CTMQ_CHECK(u.version <= newest_version, kind.name << " " << path << " has format version "
                                                    << u.version << "; this ctmq reads up to "
                                                    << newest_version << ": use a newer ctmq");
  CTMQ_CHECK(u.version >= oldest_version, kind.name << " " << path << " has format version "
                                                    << u.version << ", which no ctmq wrote (the "
                                                    << "footer is damaged)");
  return u;
}

}  // namespace ctmq
