#include "ctmq/common/run_layout.h"

#include <filesystem>

#include "ctmq/common/atomic_file.h"

namespace ctmq {

bool RunLayout::is_done(const std::string& name) const {
  return std::filesystem::exists(done_marker(name));
}

void RunLayout::mark_done(const std::string& name, const std::string& note_json) const {
  write_file_atomically(done_marker(name), note_json + "\n");
}

}  // namespace ctmq
