#include "ctmq/common/sealed_file.h"

#include <gtest/gtest.h>

#include "ctmq/common/error.h"

namespace ctmq {
namespace {

constexpr SealKind kKind{"test file", "CTMQTEST"};

std::string error_of(const std::string& bytes, uint32_t oldest = 2, uint32_t newest = 2) {
  try {
    unseal(bytes, kKind, "F", oldest, newest);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(SealedFile, RoundTripIsLittleEndian) {
  const std::string sealed = seal("payload", kKind, 2);
  ASSERT_EQ(sealed.size(), 7 + kSealBytes);
  EXPECT_EQ(sealed.substr(7, 8), "CTMQTEST");
  EXPECT_EQ(sealed[15], '\x07');  // size 7, least significant byte first
  EXPECT_EQ(sealed[27], '\x02');  // version 2
  EXPECT_TRUE(has_seal(sealed, kKind));
  const Unsealed u = unseal(sealed, kKind, "F", 2, 2);
  EXPECT_EQ(u.payload_size, 7u);
  EXPECT_EQ(u.version, 2u);
}

TEST(SealedFile, EveryFlippedBitIsRefusedByName) {
  const std::string sealed = seal(std::string(100, 'x') + "tail", kKind, 2);
  for (size_t at = 0; at < sealed.size(); ++at) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string damaged = sealed;
      damaged[at] = static_cast<char>(damaged[at] ^ (1 << bit));
      const std::string m = error_of(damaged);
      EXPECT_NE(m.find("test file F"), std::string::npos) << "byte " << at << " bit " << bit;
    }
  }
  EXPECT_NE(error_of(sealed.substr(0, 20)).find("truncated"), std::string::npos);
  EXPECT_NE(error_of(sealed.substr(0, sealed.size() - 1)).find("no valid footer"),
            std::string::npos);
  EXPECT_NE(error_of(seal("p", kKind, 3)).find("use a newer ctmq"), std::string::npos);
}

}  // namespace
}  // namespace ctmq
