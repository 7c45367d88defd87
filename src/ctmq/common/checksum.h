// The checksums of ctmq: zlib's CRC-32 (the polynomial of gzip and PNG),
// used by every format ctmq defines (shards, manifests, checkpoints, network
// files); and CRC-32C, which TensorBoard's event files (TFRecord) require.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ctmq {

// zlib crc32 of `size` bytes, continuing from `crc` (0 to start). Any size.
uint32_t crc32_of(const void* data, size_t size, uint32_t crc = 0);

// CRC-32C (Castagnoli: polynomial 0x1EDC6F41, reflected, initial and final
// XOR 0xFFFFFFFF) of `size` bytes, through Boost.CRC; crc32c_of("123456789",
// 9) == 0xE3069283.
uint32_t crc32c_of(const void* data, size_t size);

// crc32 as 8 lower-case hex digits, and back (throws ctmq::Error naming
// `where` on bad text).
std::string crc32_hex(uint32_t crc);
uint32_t parse_crc32_hex(const std::string& text, const std::string& where);

}  // namespace ctmq
