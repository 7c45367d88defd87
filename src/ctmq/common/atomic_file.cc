#include "ctmq/common/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ctmq/common/error.h"

namespace ctmq {
namespace fs = std::filesystem;
namespace {

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  CTMQ_CHECK(fd >= 0, "cannot open " << path << " to sync it: " << std::strerror(errno));
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  // Some file systems refuse fsync on directories (EINVAL); the rename is
  // still atomic there.
  CTMQ_CHECK(rc == 0 || (directory && saved == EINVAL),
             "cannot sync " << path << ": " << std::strerror(saved));
}

std::string parent_of(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace

std::string temporary_path_for(const std::string& final_path) {
  static std::atomic<unsigned> counter{0};
  std::ostringstream name;
  name << final_path << ".tmp." << ::getpid() << "." << counter++;
  return name.str();
}

int remove_temporaries_in(const std::string& directory) {
  std::error_code ec;
  if (!fs::is_directory(directory, ec)) return 0;
  int removed = 0;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".tmp.") == std::string::npos || !entry.is_regular_file(ec)) continue;
    if (fs::remove(entry.path(), ec)) ++removed;
  }
  return removed;
}

void commit_file_atomically(const std::string& temporary_path, const std::string& final_path) {
  CTMQ_ASSERT(fs::path(temporary_path).parent_path() == fs::path(final_path).parent_path());
  fsync_path(temporary_path, false);
  std::error_code ec;
  fs::rename(temporary_path, final_path, ec);
  if (ec) {
    fs::remove(temporary_path);
    CTMQ_FAIL("cannot rename " << temporary_path << " to " << final_path << ": " << ec.message());
  }
  fsync_path(parent_of(final_path), true);
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  std::error_code ec;
  fs::create_directories(parent_of(path), ec);
  CTMQ_CHECK(!ec, "cannot create directory " << parent_of(path) << ": " << ec.message());
  const std::string temporary = temporary_path_for(path);
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    CTMQ_CHECK(out, "cannot write " << temporary << ": " << std::strerror(errno));
    errno = 0;
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      // The stream keeps no error code; errno is the failed write(2)'s
      // (ENOSPC on a full file system).
      const int saved = errno;
      out.close();
      fs::remove(temporary);
      CTMQ_FAIL(
          "cannot write " << path << " (temporary " << temporary << "): "
                          << (saved != 0 ? std::strerror(saved) : "write failed (disk full?)"));
    }
  }
  commit_file_atomically(temporary, path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CTMQ_CHECK(in, "cannot read " << path << ": " << std::strerror(errno));
  std::ostringstream contents;
  contents << in.rdbuf();
  CTMQ_CHECK(!in.bad(), "error while reading " << path);
  return contents.str();
}

}  // namespace ctmq
