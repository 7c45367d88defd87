#include "apps/app_options.h"

#include <torch/version.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <new>
#include <sstream>

#include "ctmq/common/build_features.h"
#include "ctmq/common/error.h"
#include "ctmq/common/host_allocator.h"
#include "ctmq/common/log.h"
#include "ctmq/common/version.h"
#include "ctmq/plan/run_config.h"

namespace ctmq::apps {
namespace {

// Reads the INI file (plan::parse_run_config, the one reader of the format),
// keeping only the sections in info.sections.
po::parsed_options parse_ini(const std::string& path, const AppInfo& info,
                             const po::options_description& options) {
  std::ifstream in(path);
  CTMQ_CHECK(in, "config file " << path << " cannot be read; check --config");
  std::ostringstream text;
  text << in.rdbuf();
  const plan::RunConfig config = plan::parse_run_config(text.str(), path);
  po::parsed_options parsed(&options);
  for (const std::string& section : info.sections) {
    const auto keys = config.sections.find(section);
    if (keys == config.sections.end()) continue;
    for (const auto& [key, value] : keys->second) {
      CTMQ_CHECK(options.find_nothrow(key, false) != nullptr,
                 path << ":" << config.lines.at(section).at(key) << ": unknown option '" << key
                      << "' in section [" << section << "] for " << info.name << "; see "
                      << info.name << " --help");
      po::option option(key, {value});
      option.original_tokens = {key, value};
      parsed.options.push_back(option);
    }
  }
  return parsed;
}

}  // namespace

// Boost's message of `e`, safe from its placeholder loop: what() replaces
// "%value%" (and the other tokens) by the user's text until none is left, so a
// value that itself contains "%value%" never ends (found by
// fuzz/config_fuzz.cc: a 10 s timeout). Every '%' of the substituted texts
// becomes "<%>" first.
std::string message_of(const po::error& e) {
  auto* named = dynamic_cast<const po::error_with_option_name*>(&e);
  if (!named) return e.what();
  struct Access : po::error_with_option_name {
    static std::map<std::string, std::string>& substitutions(po::error_with_option_name& error) {
      return error.*(&Access::m_substitutions);
    }
  };
  po::error_with_option_name copy = *named;
  for (auto& [token, text] : Access::substitutions(copy)) {
    std::string safe;
    for (const char c : text) safe += c == '%' ? std::string("<%>") : std::string(1, c);
    text = safe;
  }
  return copy.what();
}

std::string help_epilogue(const AppInfo& info) {
  std::ostringstream out;
  if (!info.examples.empty()) {
    out << "Examples:\n";
    for (const auto& e : info.examples) out << "  " << e << "\n";
    out << "\n";
  }
  std::vector<std::pair<int, std::string>> codes = {
      {static_cast<int>(ExitCode::kOk), "done"},
      {static_cast<int>(ExitCode::kError),
       "an error, named on stderr (bad options, input or files); nothing half-written"},
      {static_cast<int>(ExitCode::kBug), "an internal assertion failed (a bug: please report it)"}};
  // An executable's own meaning of a code replaces the generic one.
  codes.erase(std::remove_if(codes.begin(), codes.end(),
                             [&info](const auto& c) {
                               return std::any_of(
                                   info.exit_codes.begin(), info.exit_codes.end(),
                                   [&c](const auto& own) { return own.first == c.first; });
                             }),
              codes.end());
  codes.insert(codes.end(), info.exit_codes.begin(), info.exit_codes.end());
  std::stable_sort(codes.begin(), codes.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  out << "Exit codes:\n";
  for (const auto& [code, meaning] : codes) {
    std::string number = std::to_string(code);
    number.resize(4, ' ');
    out << "  " << number << meaning << "\n";
  }
  return out.str();
}

bool parse_options(int argc, char** argv, const AppInfo& info, po::options_description& options,
                   po::variables_map& vm) {
  po::options_description generic("General");
  generic.add_options()("help,h", "print this help and exit")(
      "version", "print the version and exit")("config",
                                               po::value<std::string>()->value_name("FILE"),
                                               "INI file with options (command line overrides it)")(
      "check-config",
      "check --config's sections, and the keys of the sections this program reads, then exit 0 "
      "(the runners check a chain's configuration up front)");
  po::options_description all;
  all.add(generic).add(options);
  try {
    po::store(po::parse_command_line(argc, argv, all), vm);
  } catch (const po::error& e) {
    CTMQ_FAIL(info.name << ": " << message_of(e) << "; see " << info.name << " --help");
  }
  if (vm.count("help")) {
    std::cout << info.name << ": " << info.summary << "\n\n"
              << "Usage: " << info.name << " [--config FILE] [options]\n";
    if (!info.sections.empty()) {
      std::cout << "Reads the INI sections:";
      for (const auto& s : info.sections) std::cout << " [" << s << "]";
      std::cout << "\n";
    }
    std::cout << "\n" << all << "\n" << help_epilogue(info);
    return false;
  }
  if (vm.count("version")) {
    std::cout << info.name << " " << CTMQ_VERSION << " (LibTorch " << TORCH_VERSION
              << "; built with: " << build_feature_list() << ")\n";
    return false;
  }
  if (vm.count("config")) {
    try {
      po::store(parse_ini(vm["config"].as<std::string>(), info, all), vm);
    } catch (const po::error& e) {
      CTMQ_FAIL("config file " << vm["config"].as<std::string>() << ": " << message_of(e));
    }
  }
  if (vm.count("check-config")) {
    CTMQ_CHECK(vm.count("config"), info.name << ": --check-config needs --config FILE");
    return false;
  }
  try {
    po::notify(vm);
  } catch (const po::error& e) {
    CTMQ_FAIL(info.name << ": " << message_of(e) << "; see " << info.name << " --help");
  }
  return true;
}

std::string resolved_config_ini(const AppInfo& info, const po::options_description& options,
                                const po::variables_map& vm) {
  std::ostringstream out;
  out << "# resolved options of " << info.name << " " << CTMQ_VERSION << "\n";
  for (const auto& option : options.options()) {
    const std::string& key = option->long_name();
    if (!vm.count(key)) continue;
    const boost::any& value = vm[key].value();
    out << key << " = ";
    if (auto s = boost::any_cast<std::string>(&value))
      out << *s;
    else if (auto i = boost::any_cast<int>(&value))
      out << *i;
    else if (auto l = boost::any_cast<int64_t>(&value))
      out << *l;
    else if (auto d = boost::any_cast<double>(&value))
      out << *d;
    else if (auto b = boost::any_cast<bool>(&value))
      out << (*b ? "true" : "false");
    else
      out << "(unprintable)";
    out << "\n";
  }
  return out.str();
}

void add_data_options(po::options_description& options, std::string* train_manifest,
                      std::string* test_manifest, int64_t* train_limit, int64_t* test_limit) {
  // clang-format off
  options.add_options()
    ("train-manifest", po::value(train_manifest)->value_name("FILE"),
     "[data] manifest.json of the training shards (ctmq-train; ctmq-eval's BatchNorm re-estimation)")
    ("test-manifest", po::value(test_manifest)->value_name("FILE"),
     "[data] manifest.json of the test shards (ctmq-eval; ctmq-train's eval-every)")
    ("train-limit", bound(train_limit)->value_name("N"), "[data] use the first N training samples; 0 = all")
    ("test-limit", bound(test_limit)->value_name("N"), "[data] evaluate the first N test samples; 0 = all");
  // clang-format on
}

int run_main(const std::string& program_name, const std::function<int()>& body) {
  // The one error line: stamped like the log lines (log.h), and tagged with
  // the rank when the program knows it.
  auto program = [&program_name] {
    int rank = log_rank();
    return log_timestamp() + " " +
           (rank < 0 ? program_name : program_name + "[rank " + std::to_string(rank) + "]");
  };
  keep_freed_host_memory();  // before any thread or tensor: see host_allocator.h
  try {
    return body();
  } catch (const ctmq::Error& e) {
    std::cerr << program() << ": error: " << e.what() << "\n";
    return static_cast<int>(ExitCode::kError);
  } catch (const std::bad_alloc&) {
    std::cerr << program()
              << ": error: out of memory: the input or the options ask for more memory than this "
                 "process can get (check image sizes, --batch and --threads; earlier results are "
                 "untouched)\n";
    return static_cast<int>(ExitCode::kError);
  } catch (const std::logic_error& e) {
    std::cerr << program() << ": " << e.what() << " (please report this bug)\n";
    return static_cast<int>(ExitCode::kBug);
  } catch (const std::exception& e) {
    std::cerr << program() << ": error: " << e.what() << "\n";
    return static_cast<int>(ExitCode::kError);
  }
}

int run_mpi_main(const std::string& program, std::unique_ptr<dist::MpiContext>& mpi,
                 const std::function<int()>& body, const std::vector<int>& keep) {
  const int code = run_main(program, body);
  const bool failed = code != 0 && std::find(keep.begin(), keep.end(), code) == keep.end();
  if (failed && mpi && mpi->size() > 1) {
    mpi->abort(program + "[rank " + std::to_string(mpi->rank()) +
                   "]: aborting every rank of the job after the error above",
               code);
  }
  return code;
}

}  // namespace ctmq::apps
