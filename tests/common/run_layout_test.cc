#include "ctmq/common/run_layout.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "test_support.h"

namespace ctmq {
namespace {

using ctmq::testing::error_of;

TEST(RunLayout, ADoneNoteIsVerifiedAndCarriesItsStage) {
  testing::TempDir dir;
  const RunLayout run(dir.path());
  EXPECT_FALSE(run.is_done("c1-w2a2"));
  run.mark_done("c1-w2a2", R"({"global_step": 40, "last_loss": 0.5})");
  EXPECT_TRUE(run.is_done("c1-w2a2"));
  const std::string text = read_file(run.done_marker("c1-w2a2"));
  EXPECT_NE(text.find("\"stage\":\"c1-w2a2\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"note_crc32\""), std::string::npos) << text;
}

// Issue [7/12] #1: a DONE note was trusted by existence alone.
TEST(RunLayout, AChangedByteAnywhereInADoneNoteIsRefusedByName) {
  testing::TempDir dir;
  const RunLayout run(dir.path());
  run.mark_done("c0-fp", R"({"global_step": 1234, "ranks": 2, "last_accuracy": 0.875})");
  const std::string path = run.done_marker("c0-fp");
  const std::string good = read_file(path);
  for (size_t at = 0; at < good.size(); ++at) {
    for (const char flip : {0x01, 0x10}) {
      std::string damaged = good;
      damaged[at] = static_cast<char>(damaged[at] ^ flip);
      write_file_atomically(path, damaged);
      const std::string error = error_of([&] { run.is_done("c0-fp"); });
      EXPECT_NE(error.find(path), std::string::npos)
          << "byte " << at << " ^ " << int(flip) << " was not detected: " << damaged;
    }
  }
  write_file_atomically(path, "");
  EXPECT_NE(error_of([&] { run.is_done("c0-fp"); }).find("not valid JSON"), std::string::npos);
  write_file_atomically(path, "{}\n");
  EXPECT_NE(error_of([&] { run.is_done("c0-fp"); }).find("no note_crc32"), std::string::npos);
  // Another stage's note copied into this stage.
  run.mark_done("c1-w1a1", "{}");
  std::filesystem::copy_file(run.done_marker("c1-w1a1"), path,
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_NE(error_of([&] { run.is_done("c0-fp"); }).find("belongs to stage 'c1-w1a1'"),
            std::string::npos);
}

}  // namespace
}  // namespace ctmq
