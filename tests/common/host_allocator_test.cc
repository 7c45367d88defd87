// The host allocator policy: applied through mallopt on glibc, left alone
// when the user tuned glibc through its environment variables.
#include "ctmq/common/host_allocator.h"

#include <gtest/gtest.h>
#include <malloc.h>
#include <stdlib.h>

#include <cstdlib>
#include <vector>

// AddressSanitizer (pipeline/sanitize.sh) brings its own malloc, which
// ignores mallopt.
#if defined(__SANITIZE_ADDRESS__)
#define CTMQ_OWN_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CTMQ_OWN_MALLOC 1
#endif
#endif

namespace ctmq {
namespace {

#if defined(__GLIBC__) && !defined(CTMQ_OWN_MALLOC)
TEST(HostAllocator, AppliesOnGlibcAndFreedBlocksStayInTheHeap) {
  ASSERT_EQ(std::getenv("MALLOC_MMAP_THRESHOLD_"), nullptr);
  ASSERT_EQ(std::getenv("MALLOC_TRIM_THRESHOLD_"), nullptr);
  EXPECT_TRUE(keep_freed_host_memory());
  // A step's working set: six 4 MiB blocks (stage-1 activations of ResNet-20
  // at batch 64), all freed. The heap keeps them for the next step; glibc's
  // default trims it back to a few hundred KiB (measured: 0.2 MiB), so the
  // next step page-faults them in again.
  const size_t mapped_before = mallinfo2().hblks;  // live blocks of static initialisers
  std::vector<char*> blocks;
  for (int i = 0; i < 6; ++i) {
    blocks.push_back(static_cast<char*>(std::malloc((4 << 20) + i * 4096)));
    ASSERT_NE(blocks.back(), nullptr);
    blocks.back()[0] = 1;
  }
  EXPECT_EQ(mallinfo2().hblks, mapped_before) << "blocks under 32 MiB must not be mmapped";
  for (char* p : blocks) std::free(p);
  EXPECT_GE(mallinfo2().fordblks, static_cast<size_t>(24) << 20)
      << "freed blocks must stay in the heap";
}

TEST(HostAllocator, KeepsTheUsersEnvironmentTuning) {
  ASSERT_EQ(setenv("MALLOC_TRIM_THRESHOLD_", "1048576", 1), 0);
  EXPECT_FALSE(keep_freed_host_memory());
  unsetenv("MALLOC_TRIM_THRESHOLD_");
}
#else
TEST(HostAllocator, AppliesNothingWithoutGlibcsMalloc) {
  ASSERT_EQ(std::getenv("MALLOC_MMAP_THRESHOLD_"), nullptr);
  ASSERT_EQ(std::getenv("MALLOC_TRIM_THRESHOLD_"), nullptr);
  EXPECT_FALSE(keep_freed_host_memory());
}
#endif

}  // namespace
}  // namespace ctmq
