// The one checksum of ctmq: zlib's CRC-32 (the polynomial of gzip and PNG),
// used by every format writer and reader (shards, manifests, checkpoints,
// network files).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ctmq {

// zlib crc32 of `size` bytes, continuing from `crc` (0 to start). Any size.
uint32_t crc32_of(const void* data, size_t size, uint32_t crc = 0);

// crc32 as 8 lower-case hex digits, and back (throws ctmq::Error naming
// `where` on bad text).
std::string crc32_hex(uint32_t crc);
uint32_t parse_crc32_hex(const std::string& text, const std::string& where);

}  // namespace ctmq
