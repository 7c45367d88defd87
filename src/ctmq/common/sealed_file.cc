#include "ctmq/common/sealed_file.h"

#include <cstring>

#include "ctmq/common/checksum.h"
#include "ctmq/common/error.h"

namespace ctmq {
namespace {

void put_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t get_le(const char* in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i)
    value |= static_cast<uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return value;
}

}  // namespace

std::string seal(std::string payload, const SealKind& kind, uint32_t version) {
  const uint64_t size = payload.size();
  const uint32_t crc = crc32_of(payload.data(), payload.size());
  payload.append(kind.magic, 8);
  put_le(payload, size, 8);
  put_le(payload, crc, 4);
  put_le(payload, version, 4);
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
  const uint64_t size = get_le(footer + 8, 8);
  const auto crc = static_cast<uint32_t>(get_le(footer + 16, 4));
  u.version = static_cast<uint32_t>(get_le(footer + 20, 4));
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
