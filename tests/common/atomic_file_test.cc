#include "ctmq/common/atomic_file.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "ctmq/common/error.h"
#include "test_support.h"

namespace ctmq {
namespace {

TEST(AtomicFile, WritesAndReplacesWholeFile) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/sub/file.txt";
  write_file_atomically(path, "first");
  EXPECT_EQ(read_file(path), "first");
  write_file_atomically(path, "second, longer");
  EXPECT_EQ(read_file(path), "second, longer");
  // No temporary files are left behind.
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path() + "/sub")) (void)e, ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(AtomicFile, FailureLeavesOldFileAndNamesPath) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/file.txt";
  write_file_atomically(path, "kept");
  // A directory where the temporary file would go makes the write fail.
  std::filesystem::create_directories(dir.path() + "/blocked");
  try {
    write_file_atomically(dir.path() + "/blocked", "x");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blocked"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(path), "kept");
}

TEST(AtomicFile, ReadMissingFileNamesIt) {
  try {
    read_file("/nonexistent/ctmq/file");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/ctmq/file"), std::string::npos);
  }
}

}  // namespace
}  // namespace ctmq
