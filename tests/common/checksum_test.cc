// The checksums against their published check values (the CRC catalogue's
// "123456789" test vector) and against piecewise computation.
#include "ctmq/common/checksum.h"

#include <gtest/gtest.h>

#include <string>

namespace ctmq {
namespace {

const std::string kCheckInput = "123456789";

TEST(Checksum, Crc32MatchesTheCheckValueAndContinues) {
  EXPECT_EQ(crc32_of(kCheckInput.data(), kCheckInput.size()), 0xCBF43926u);
  const uint32_t first = crc32_of(kCheckInput.data(), 4);
  EXPECT_EQ(crc32_of(kCheckInput.data() + 4, kCheckInput.size() - 4, first), 0xCBF43926u);
  EXPECT_EQ(parse_crc32_hex(crc32_hex(0x0000abcdu), "test"), 0x0000abcdu);
}

TEST(Checksum, Crc32cMatchesTheCheckValue) {
  EXPECT_EQ(crc32c_of(kCheckInput.data(), kCheckInput.size()), 0xE3069283u);
  EXPECT_EQ(crc32c_of("", 0), 0u);
  EXPECT_NE(crc32c_of(kCheckInput.data(), kCheckInput.size()),
            crc32_of(kCheckInput.data(), kCheckInput.size()));
}

}  // namespace
}  // namespace ctmq
