// Shared command-line handling for the ctmq executables (Boost only here).
//
// Every executable takes --help, --version and --config FILE. The config file
// is INI: `[section]` headers group options, keys are the executable's own
// flag names (`epochs = 3` under `[train]` is `--epochs 3`). An executable
// reads the sections it names and ignores the others, so one run.ini serves
// the whole chain; an unknown key inside a section it reads is an error that
// names the file and line. Command-line values override the file.
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "ctmq/common/enum_names.h"
#include "ctmq/dist/mpi_context.h"

namespace ctmq::apps {

namespace po = boost::program_options;

struct AppInfo {
  std::string name;                   // e.g. "ctmq-train"
  std::string summary;                // one line for --help
  std::vector<std::string> sections;  // INI sections this executable reads
  // --help's epilogue (help_epilogue): 2-3 command lines, and the exit codes
  // this executable adds to 0, 1 and 3 or means otherwise (e.g. {75, "preempted ..."}).
  std::vector<std::string> examples;
  std::vector<std::pair<int, std::string>> exit_codes;
};

// The text --help prints after the options: "Examples:" with info.examples,
// then "Exit codes:" 0 (done), 1 (an error, named on stderr: bad options,
// input or files; ctmq::ExitCode::kError), 3 (an internal assertion: a bug)
// and info.exit_codes, in numeric order.
std::string help_epilogue(const AppInfo& info);

// Parses argv (and --config) into `vm`. Returns false when the program should
// exit 0 (after --help, --version, or --check-config once the config's
// sections and keys passed). Throws ctmq::Error on bad options.
bool parse_options(int argc, char** argv, const AppInfo& info, po::options_description& options,
                   po::variables_map& vm);

// The resolved options as INI text (one `key = value` per set option), for
// writing next to the results.
std::string resolved_config_ini(const AppInfo& info, const po::options_description& options,
                                const po::variables_map& vm);

// Option groups are declared once, each option bound to the field of the
// library struct that holds it and its default (style: ctmq-plan):
//   ("epochs", bound(&o.epochs)->value_name("N"), "...")
// shows and applies the struct's default; the value is stored by po::notify
// (parse_options).

// A value option bound to `field`, defaulting to the field's current value,
// shown as C++ streams print it (0.9, not 0.90000000000000002).
template <typename T>
po::typed_value<T>* bound(T* field) {
  std::ostringstream shown;
  shown << std::boolalpha << *field;
  return po::value(field)->default_value(*field, shown.str());
}

// An option whose value is one of an enum's names (common/enum_names.h), bound
// to `field` and defaulting to its current value; an unknown name is a
// ctmq::Error naming `option`, the choices and `note` (at po::notify).
template <typename E, std::size_t N>
po::typed_value<std::string>* enum_value(E* field, const EnumTable<E, N>& table,
                                         const std::string& option, const std::string& note = "") {
  return po::value<std::string>()
      ->default_value(enum_name(table, *field))
      ->notifier([field, &table, option, note](const std::string& name) {
        *field = parse_enum(table, name, option, note);
      });
}

// The [data] group of ctmq-train and ctmq-eval: the shards' manifests and how
// much of them to use (0 = all).
void add_data_options(po::options_description& options, std::string* train_manifest,
                      std::string* test_manifest, int64_t* train_limit, int64_t* test_limit);

// Runs `body`, turning any exception into one line on stderr (tagged with the
// rank when known) and a non-zero exit code (see ctmq::ExitCode). Sets the
// host allocator policy first (common/host_allocator.h).
int run_main(const std::string& program, const std::function<int()>& body);

// The error policy of every executable that runs under MPI (ctmq-train,
// ctmq-eval), written once: `body` creates the MPI context in `mpi` (so that it
// outlives the body's unwinding) and returns the exit code. A failure is one
// rank-tagged line (run_main); with more than one rank, a failing rank then
// calls MPI_Abort so every rank of the job ends within seconds instead of
// waiting forever in a collective. `keep` lists the non-zero codes that are no
// failure (ctmq-train's 75, preempted after a checkpoint).
int run_mpi_main(const std::string& program, std::unique_ptr<dist::MpiContext>& mpi,
                 const std::function<int()>& body, const std::vector<int>& keep = {});

}  // namespace ctmq::apps
