#include "ctmq/plan/run_config.h"

#include <algorithm>
#include <optional>
#include <set>
#include <sstream>

#include "ctmq/common/error.h"

namespace ctmq::plan {
namespace {

std::string trim(const std::string& s) {
  const char* space = " \t\r\n";
  const size_t begin = s.find_first_not_of(space);
  if (begin == std::string::npos) return "";
  const size_t end = s.find_last_not_of(space);
  return s.substr(begin, end - begin + 1);
}

bool is_known_section(const std::string& section) {
  const auto& known = config_sections();
  return std::find(known.begin(), known.end(), section) != known.end();
}

std::string known_sections_text() {
  std::string text;
  for (const auto& s : config_sections()) text += (text.empty() ? "[" : " [") + s + "]";
  return text;
}

}  // namespace

const std::vector<std::string>& config_sections() {
  static const std::vector<std::string> sections{"plan",  "model", "train",  "data",  "eval",
                                                 "shard", "slurm", "export", "infer", "status"};
  return sections;
}

RunConfig parse_run_config(const std::string& text, const std::string& path) {
  RunConfig config;
  std::istringstream in(text);
  std::string line, section;
  bool in_section = false;
  for (int number = 1; std::getline(in, line); ++number) {
    const size_t comment = line.find_first_of("#;");
    const std::string body = trim(comment == std::string::npos ? line : line.substr(0, comment));
    if (body.empty()) continue;
    if (body.front() == '[') {
      CTMQ_CHECK(body.back() == ']' && body.size() > 2, path << ":" << number
                                                             << ": malformed section header '"
                                                             << body << "'; expected [name]");
      section = trim(body.substr(1, body.size() - 2));
      CTMQ_CHECK(is_known_section(section), path << ":" << number << ": unknown section ["
                                                 << section << "]; a ctmq config has "
                                                 << known_sections_text());
      in_section = true;
      config.sections[section];
      continue;
    }
    const size_t eq = body.find('=');
    CTMQ_CHECK(eq != std::string::npos,
               path << ":" << number << ": expected 'key = value', found '" << body << "'");
    const std::string key = trim(body.substr(0, eq));
    CTMQ_CHECK(!key.empty(), path << ":" << number << ": empty key in '" << body << "'");
    CTMQ_CHECK(in_section, path << ":" << number << ": '" << key
                                << "' comes before any [section] header, where no ctmq "
                                   "program reads it; move it under its section");
    auto& keys = config.sections[section];
    CTMQ_CHECK(keys.count(key) == 0, path << ":" << number << ": [" << section << "] " << key
                                          << " is set a second time; keep one of them");
    keys[key] = trim(body.substr(eq + 1));
    config.lines[section][key] = number;
  }
  // A header without keys sets nothing.
  for (auto it = config.sections.begin(); it != config.sections.end();) {
    it = it->second.empty() ? config.sections.erase(it) : std::next(it);
  }
  return config;
}

std::optional<std::string> config_value(const RunConfig& config, const std::string& section,
                                        const std::string& key) {
  auto s = config.sections.find(section);
  if (s == config.sections.end()) return std::nullopt;
  auto k = s->second.find(key);
  if (k == s->second.end()) return std::nullopt;
  return k->second;
}

ConfigOverride parse_override(const std::string& text) {
  const std::string expected = "; expected --set section.key=value, e.g. --set train.seed=2";
  const size_t eq = text.find('=');
  CTMQ_CHECK(eq != std::string::npos, "--set '" << text << "' has no '='" << expected);
  const std::string name = trim(text.substr(0, eq));
  const size_t dot = name.find('.');
  CTMQ_CHECK(dot != std::string::npos, "--set '" << text << "' names no section" << expected);
  ConfigOverride o{trim(name.substr(0, dot)), trim(name.substr(dot + 1)),
                   trim(text.substr(eq + 1))};
  CTMQ_CHECK(is_known_section(o.section), "--set '" << text << "': unknown section [" << o.section
                                                    << "]; a ctmq config has "
                                                    << known_sections_text());
  CTMQ_CHECK(!o.key.empty() && o.key.find_first_of(" \t[]#;") == std::string::npos,
             "--set '" << text << "': '" << o.key << "' is not a key" << expected);
  CTMQ_CHECK(!o.value.empty(), "--set '" << text << "': the value of [" << o.section << "] "
                                         << o.key << " is empty; give one");
  CTMQ_CHECK(o.value.find_first_of("#;\r\n") == std::string::npos,
             "--set '" << text << "': the value of [" << o.section << "] " << o.key
                       << " holds '#', ';' or a newline, which start a comment or a line "
                          "in the config file");
  return o;
}

void apply_overrides(RunConfig& config, const std::vector<ConfigOverride>& overrides) {
  for (const auto& o : overrides) config.sections[o.section][o.key] = o.value;
}

std::string format_run_config(const RunConfig& config, const std::string& source,
                              const std::vector<std::string>& overrides) {
  std::ostringstream out;
  out << "# ctmq resolved configuration (ctmq-plan --resolve-config): comments and key order\n"
      << "# of the source are not kept. The stages read this file, not the source.\n"
      << "# source: " << source << "\n";
  for (const auto& o : overrides) out << "# override: --set " << o << "\n";
  for (const auto& section : config_sections()) {
    auto it = config.sections.find(section);
    if (it == config.sections.end() || it->second.empty()) continue;
    out << "\n[" << section << "]\n";
    for (const auto& [key, value] : it->second) out << key << " = " << value << "\n";
  }
  return out.str();
}

std::string first_difference(const RunConfig& a, const RunConfig& b, const std::string& a_name,
                             const std::string& b_name) {
  auto shown = [](const std::optional<std::string>& v, const std::string& name) {
    return (v ? *v + " in " : std::string("not set in ")) + name;
  };
  for (const auto& section : config_sections()) {
    std::set<std::string> keys;
    for (const RunConfig* c : {&a, &b}) {
      auto s = c->sections.find(section);
      if (s == c->sections.end()) continue;
      for (const auto& kv : s->second) keys.insert(kv.first);
    }
    for (const auto& key : keys) {
      const auto in_a = config_value(a, section, key), in_b = config_value(b, section, key);
      if (in_a == in_b) continue;
      return "[" + section + "] " + key + ": " + shown(in_a, a_name) + ", " + shown(in_b, b_name);
    }
  }
  return "";
}

}  // namespace ctmq::plan
