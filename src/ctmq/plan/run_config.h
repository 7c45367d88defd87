// A chain's configuration as values: the sections and keys of run.ini after
// the command line's `--set section.key=value` overrides, in one canonical
// text form. A run directory is tied to this resolved configuration
// (RUN/config.ini), not to the bytes of the INI it came from: comments, blank
// lines, spacing and key order do not make a different configuration; a
// changed, added or removed value does (docs/pipeline.md, "The same
// configuration").
//
// Syntax: `[section]` headers, `key = value` lines, '#' or ';' start a
// comment anywhere on a line. parse_run_config is the one reader of this
// format in C++: the executables' --config (src/apps/app_options.cc) and
// ctmq-plan's --get/--resolve-config/--same-config-as all go through it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ctmq::plan {

// Every section a ctmq config may hold, in the canonical order: the chain's
// plan, then what each stage reads, then the data preparation and the Slurm
// runner's own settings, then the sections of the tools outside the chain
// (ctmq-export, ctmq-infer, ctmq-status).
const std::vector<std::string>& config_sections();

// section -> key -> value (values trimmed, never containing '#', ';' or a newline).
struct RunConfig {
  std::map<std::string, std::map<std::string, std::string>> sections;
  // section -> key -> the line it was read from (parse_run_config), for error
  // messages that name FILE:LINE; absent for a key set by an override.
  std::map<std::string, std::map<std::string, int>> lines;
};

// One `--set section.key=value`.
struct ConfigOverride {
  std::string section, key, value;
};

// Parses INI text read from `path` (named in errors, with the line). Throws
// ctmq::Error for a malformed header or line, a section outside
// config_sections(), a key before any section header (the executables would
// ignore it) or a key given twice in one section (they refuse that).
RunConfig parse_run_config(const std::string& text, const std::string& path);

// The value of [section] key, or nullopt when it is not set.
std::optional<std::string> config_value(const RunConfig& config, const std::string& section,
                                        const std::string& key);

// Parses "section.key=value" (spaces around '=' allowed). Throws ctmq::Error
// naming the text when the '.' or '=' is missing, the section is not in
// config_sections(), the key or value is empty, or the value holds '#', ';'
// or a newline (a comment character would cut it when the file is read back).
ConfigOverride parse_override(const std::string& text);

// Sets each override in order (a later one wins); adds keys that are not there.
void apply_overrides(RunConfig& config, const std::vector<ConfigOverride>& overrides);

// The canonical text: a header of comments naming `source` (the INI file) and
// each override as given, then the sections in config_sections() order, keys
// sorted (byte order), `key = value`, one blank line between sections; empty
// sections are left out. parse_run_config(format_run_config(c, ...)) == c.
std::string format_run_config(const RunConfig& config, const std::string& source,
                              const std::vector<std::string>& overrides);

// "" when `a` and `b` hold the same keys with the same values; else the first
// difference in canonical order, e.g. "[train] seed: 2 in A, 1 in B" or
// "[eval] quant-report: true in A, not set in B" (a_name = "A", b_name = "B").
std::string first_difference(const RunConfig& a, const RunConfig& b, const std::string& a_name,
                             const std::string& b_name);

}  // namespace ctmq::plan
