// Shared by the libFuzzer targets of fuzz/: temporary files for readers that
// take a path, and the one rule every target applies: bad input may only
// raise ctmq::Error. Anything else that escapes (another exception type, a
// crash, a sanitizer report, an allocation over libFuzzer's -malloc_limit_mb)
// is a finding.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "ctmq/common/error.h"

namespace ctmq::fuzz {

// A private directory for this process, removed at exit. Files written into
// it are overwritten by the next execution.
class ScratchDir {
 public:
  ScratchDir()
      : path_(std::filesystem::temp_directory_path() /
              ("ctmq-fuzz-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  // Writes `size` bytes to NAME in the directory; returns its path.
  std::string write(const std::string& name, const void* data, size_t size) const {
    const std::string path = (path_ / name).string();
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    return path;
  }
  std::string write(const std::string& name, const std::string& bytes) const {
    return write(name, bytes.data(), bytes.size());
  }
  void remove(const std::string& name) const {
    std::error_code ec;
    std::filesystem::remove(path_ / name, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// One scratch directory per process (function-local static: created on first
// use, removed at exit).
inline const ScratchDir& scratch() {
  static ScratchDir dir;
  return dir;
}

// Runs `body`; ctmq::Error is the expected answer to bad input and is
// swallowed, anything else propagates to libFuzzer as a crash.
template <typename Body>
void expect_errors_only(Body&& body) {
  try {
    body();
  } catch (const ::ctmq::Error&) {
  }
}

}  // namespace ctmq::fuzz
