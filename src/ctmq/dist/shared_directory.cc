#include "ctmq/dist/shared_directory.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <sstream>
#include <thread>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/common/host_name.h"
#include "ctmq/dist/text_collectives.h"

namespace ctmq::dist {
namespace fs = std::filesystem;
namespace {

// The token's text if `path` holds it within about 2 s; "" otherwise.
bool reads_token(const std::string& path, const std::string& token) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    std::error_code error;
    if (fs::is_regular_file(path, error)) {
      try {
        if (read_file(path) == token) return true;
      } catch (const std::exception&) {
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// `directory` when it exists, else its nearest existing ancestor; "" if none.
std::string existing_directory_of(const std::string& directory) {
  std::error_code error;
  fs::path dir = fs::absolute(directory, error);
  if (error) return "";
  while (!fs::is_directory(dir, error) && dir.has_parent_path() && dir != dir.parent_path())
    dir = dir.parent_path();
  return fs::is_directory(dir, error) ? dir.string() : "";
}

}  // namespace

void check_shared_directory(Communicator& comm, const std::string& directory,
                            const std::string& what) {
  if (comm.size() == 1) return;
  std::string token;
  std::string name;  // the file's name; each rank looks for it in its own `checked`:
  // `directory` itself when it exists, else its nearest existing ancestor
  // (nothing is created: bad input must leave no run directory behind).
  const std::string checked = existing_directory_of(directory);
  run_on_root(comm, [&] {
    CTMQ_CHECK(!checked.empty(),
               what << " " << directory << ": no existing directory on its path on rank 0");
    std::random_device random;
    std::ostringstream t;
    t << host_name() << '-' << ::getpid() << '-' << std::hex << random() << random();
    token = t.str();
    name = ".ctmq-shared-check-" + token;
    write_file_atomically((fs::path(checked) / name).string(), token);
  });
  broadcast_bytes(comm, token, 0);
  broadcast_bytes(comm, name, 0);
  const std::string path = (fs::path(checked) / name).string();
  const bool seen = comm.rank() == 0 || (!checked.empty() && reads_token(path, token));
  const std::vector<std::string> views = all_gather_text(comm, (seen ? "1 " : "0 ") + host_name());
  if (comm.rank() == 0) {
    std::error_code ignored;
    fs::remove(path, ignored);
  }
  std::ostringstream blind;
  int count = 0;
  for (int r = 0; r < comm.size(); ++r) {
    if (views[r].rfind("1 ", 0) == 0) continue;
    blind << (count++ ? ", " : "") << "rank " << r << " on "
          << (views[r].size() > 2 ? views[r].substr(2) : "?");
  }
  CTMQ_CHECK(count == 0, what << " " << directory << " is not shared by every rank: " << blind.str()
                              << " cannot read the file rank 0 (on "
                              << (views[0].size() > 2 ? views[0].substr(2) : "?") << ") wrote in "
                              << checked << ". Every rank reads "
                              << "checkpoints from it and rank 0 writes results to it: put it on "
                                 "storage every node mounts at the same path (a shared file "
                                 "system, not node-local scratch such as /tmp)");
}

}  // namespace ctmq::dist
