#include "ctmq/common/checksum.h"

#include <zlib.h>

#include <algorithm>
#include <boost/crc.hpp>
#include <cstdio>
#include <limits>

#include "ctmq/common/error.h"

namespace ctmq {

uint32_t crc32_of(const void* data, size_t size, uint32_t crc) {
  const auto* bytes = static_cast<const Bytef*>(data);
  // zlib's length argument is uInt; feed large buffers in pieces.
  while (size > 0) {
    uInt piece = static_cast<uInt>(std::min<size_t>(size, std::numeric_limits<uInt>::max()));
    crc = static_cast<uint32_t>(::crc32(crc, bytes, piece));
    bytes += piece;
    size -= piece;
  }
  return crc;
}

uint32_t crc32c_of(const void* data, size_t size) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(data, size);
  return crc.checksum();
}

std::string crc32_hex(uint32_t crc) {
  char text[9];
  std::snprintf(text, sizeof(text), "%08x", crc);
  return text;
}

uint32_t parse_crc32_hex(const std::string& text, const std::string& where) {
  CTMQ_CHECK(text.size() == 8 && text.find_first_not_of("0123456789abcdef") == std::string::npos,
             where << ": crc32 '" << text << "' is not 8 lower-case hex digits; re-run ctmq-shard");
  return static_cast<uint32_t>(std::stoul(text, nullptr, 16));
}

}  // namespace ctmq
