#include "ctmq/common/run_layout.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/checksum.h"
#include "ctmq/common/error.h"

namespace ctmq {
namespace {

constexpr const char* kNoteChecksum = "note_crc32";

// CRC-32 of the note's canonical JSON (sorted keys, no whitespace) without
// its own checksum field.
uint32_t note_crc32(nlohmann::json note) {
  note.erase(kNoteChecksum);
  const std::string canonical = note.dump();
  return crc32_of(canonical.data(), canonical.size());
}

}  // namespace

bool RunLayout::is_done(const std::string& name) const {
  const std::string path = done_marker(name);
  if (!std::filesystem::exists(path)) return false;
  const std::string advice =
      "; the stage's completion cannot be trusted: move the stage directory aside and retrain it "
      "(pipeline/run-chain.sh ... --from " +
      name + ")";
  nlohmann::json note;
  try {
    note = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception&) {
    CTMQ_FAIL("DONE note " << path << " is not valid JSON" << advice);
  }
  CTMQ_CHECK(note.is_object() && note.contains(kNoteChecksum) && note[kNoteChecksum].is_string(),
             "DONE note " << path << " has no " << kNoteChecksum << advice);
  const uint32_t stored = parse_crc32_hex(note[kNoteChecksum].get<std::string>(), path);
  const uint32_t computed = note_crc32(note);
  CTMQ_CHECK(stored == computed, "DONE note " << path << " fails its checksum (stored "
                                              << crc32_hex(stored) << ", computed "
                                              << crc32_hex(computed) << ")" << advice);
  CTMQ_CHECK(note.value("stage", std::string()) == name,
             "DONE note " << path << " belongs to stage '" << note.value("stage", std::string())
                          << "', not '" << name << "'" << advice);
  return true;
}

void RunLayout::mark_done(const std::string& name, const std::string& note_json) const {
  nlohmann::json note = nlohmann::json::parse(note_json);
  CTMQ_CHECK(note.is_object(), "mark_done(" << name << "): the note must be a JSON object");
  note["stage"] = name;
  note[kNoteChecksum] = crc32_hex(note_crc32(note));
  write_file_atomically(done_marker(name), note.dump() + "\n");
}

}  // namespace ctmq
