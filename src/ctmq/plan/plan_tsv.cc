#include "ctmq/plan/plan_tsv.h"

#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>
#include <vector>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/checksum.h"
#include "ctmq/common/error.h"
#include "ctmq/common/run_layout.h"
#include "ctmq/quant/bit_depths.h"

namespace ctmq::plan {
namespace {

constexpr const char* kChecksumPrefix = "# crc32 ";

const char* const kColumns[] = {"index",  "stage",  "cycle", "step", "w_bits",
                                "a_bits", "epochs", "init",  "role"};
constexpr size_t kColumnCount = sizeof(kColumns) / sizeof(kColumns[0]);

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, '\t')) fields.push_back(field);
  if (!line.empty() && line.back() == '\t') fields.push_back("");
  return fields;
}

int parse_int(const std::string& text, const std::string& where, const char* column) {
  try {
    size_t used = 0;
    int value = std::stoi(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  CTMQ_FAIL(where << ": column " << column << " = '" << text << "' is not an integer");
}

std::string version_line() {
  return "# ctmq plan version " + std::to_string(kPlanTsvVersion) + " (docs/run-directory.md)";
}

}  // namespace

std::string format_plan_tsv(const StagePlan& plan) {
  std::ostringstream out;
  out << version_line() << "\n";
  for (size_t i = 0; i < kColumnCount; ++i) out << (i ? "\t" : "") << kColumns[i];
  out << "\n";
  for (const Stage& s : plan.stages) {
    out << s.index << "\t" << s.name << "\t" << s.cycle << "\t" << s.step << "\t" << s.bits.weight
        << "\t" << s.bits.activation << "\t" << s.epochs << "\t" << s.init << "\t"
        << role_name(s.role) << "\n";
  }
  const std::string body = out.str();
  return body + kChecksumPrefix + crc32_hex(crc32_of(body.data(), body.size())) + "\n";
}

StagePlan parse_plan_tsv(const std::string& text, const std::string& source) {
  // The last line records the CRC-32 of everything above it: a byte changed
  // on shared storage is refused before any stage acts on it.
  const size_t last = text.rfind(kChecksumPrefix);
  CTMQ_CHECK(last != std::string::npos && (last == 0 || text[last - 1] == '\n') &&
                 text.find('\n', last) + 1 == text.size(),
             source << ": no checksum line ('" << kChecksumPrefix
                    << "HEX' last); the file is damaged or was edited by hand. Regenerate "
                       "it: ctmq-plan --config RUN/config.ini --run-dir RUN after removing it");
  const std::string body = text.substr(0, last);
  const std::string recorded = text.substr(last + std::strlen(kChecksumPrefix),
                                           text.size() - 1 - last - std::strlen(kChecksumPrefix));
  const uint32_t stored = parse_crc32_hex(recorded, source + ": checksum line");
  const uint32_t computed = crc32_of(body.data(), body.size());
  CTMQ_CHECK(stored == computed,
             source << " fails its checksum (stored " << crc32_hex(stored) << ", computed "
                    << crc32_hex(computed)
                    << "): the file is damaged or was edited by hand. Regenerate it: "
                       "ctmq-plan --config RUN/config.ini --run-dir RUN after removing it");
  std::istringstream in(body);
  std::string line;
  CTMQ_CHECK(std::getline(in, line) && line.rfind("# ctmq plan version ", 0) == 0,
             source << ": not a ctmq plan (first line should be '" << version_line()
                    << "'); regenerate it with ctmq-plan");
  const std::string version = line.substr(std::string("# ctmq plan version ").size());
  const int found = std::atoi(version.c_str());
  CTMQ_CHECK(found == kPlanTsvVersion, source << ": plan version " << found << " is not supported "
                                              << "(this ctmq reads version " << kPlanTsvVersion
                                              << "); use the ctmq that wrote it");
  CTMQ_CHECK(std::getline(in, line), source << ": header line missing");
  std::vector<std::string> header = split_tabs(line);
  CTMQ_CHECK(header.size() == kColumnCount,
             source << ":2: expected " << kColumnCount << " tab-separated columns in the header");
  for (size_t i = 0; i < kColumnCount; ++i)
    CTMQ_CHECK(header[i] == kColumns[i], source << ":2: column " << i + 1 << " is '" << header[i]
                                                << "', expected '" << kColumns[i] << "'");
  StagePlan plan;
  std::set<std::string> seen;
  for (int number = 3; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    const std::string where = source + ":" + std::to_string(number);
    std::vector<std::string> f = split_tabs(line);
    CTMQ_CHECK(f.size() == kColumnCount, where << ": expected " << kColumnCount
                                               << " tab-separated fields, found " << f.size());
    Stage s;
    s.index = parse_int(f[0], where, "index");
    s.name = f[1];
    s.cycle = parse_int(f[2], where, "cycle");
    s.step = parse_int(f[3], where, "step");
    const int w_bits = parse_int(f[4], where, "w_bits");
    const int a_bits = parse_int(f[5], where, "a_bits");
    s.epochs = parse_int(f[6], where, "epochs");
    s.init = f[7];
    s.role = parse_role(f[8]);
    CTMQ_CHECK(s.index == static_cast<int>(plan.stages.size()),
               where << ": index " << s.index << ", expected " << plan.stages.size());
    CTMQ_CHECK(!s.name.empty() && seen.insert(s.name).second,
               where << ": stage name '" << s.name << "' is empty or repeated");
    // Checked here for a message that names the line; the constructor checks again.
    CTMQ_CHECK(quant::is_valid_bits(w_bits) && quant::is_valid_bits(a_bits),
               where << ": bit depths " << f[4] << "/" << f[5] << " are not 1..8 or 32");
    s.bits = {w_bits, a_bits};
    const bool external = s.init == "none" || s.init.find(':') != std::string::npos;
    CTMQ_CHECK(external || (seen.count(s.init) && s.init != s.name),
               where << ": init '" << s.init << "' is not an earlier stage");
    plan.stages.push_back(std::move(s));
  }
  CTMQ_CHECK(!plan.stages.empty(), source << ": the plan has no stages");
  return plan;
}

std::string format_stage_table(const StagePlan& plan) {
  std::ostringstream out;
  for (const Stage& s : plan.stages) {
    out << s.name << "\t" << s.bits.weight << "\t" << s.bits.activation << "\t" << s.epochs << "\t"
        << s.init << "\t" << role_name(s.role) << "\t" << s.cycle << "\n";
  }
  return out.str();
}

void write_or_check_plan(const std::string& run_dir, const StagePlan& plan) {
  const std::string path = RunLayout(run_dir).plan();
  if (!std::filesystem::exists(path)) {
    write_file_atomically(path, format_plan_tsv(plan));
    return;
  }
  const StagePlan existing = parse_plan_tsv(read_file(path), path);
  if (existing == plan) return;
  const size_t n = std::min(existing.stages.size(), plan.stages.size());
  std::string difference;
  for (size_t i = 0; i < n && difference.empty(); ++i) {
    if (!(existing.stages[i] == plan.stages[i]))
      difference = "stage " + std::to_string(i) + " is " + existing.stages[i].name + " (init " +
                   existing.stages[i].init + ", " + std::to_string(existing.stages[i].epochs) +
                   " epochs) there but " + plan.stages[i].name + " (init " + plan.stages[i].init +
                   ", " + std::to_string(plan.stages[i].epochs) + " epochs) in this config";
  }
  if (difference.empty())
    difference = "it has " + std::to_string(existing.stages.size()) + " stages, this config " +
                 std::to_string(plan.stages.size());
  CTMQ_FAIL("run directory " << run_dir << " was made with a different plan (" << path << ": "
                             << difference
                             << "); use a new run directory or restore the [plan] options "
                                "it was made with");
}

}  // namespace ctmq::plan
