// What the benchmarks share (header only: bench/CMakeLists.txt makes one
// executable per bench/*.cc): command-line flags, wall-clock timing, running a
// child benchmark process, and the training benchmarks' model.
#pragma once

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "apps/app_options.h"
#include "ctmq/common/error.h"
#include "ctmq/model/network.h"

namespace ctmq::bench {

namespace po = boost::program_options;

// Parses argv against `options` as the executables do (apps::parse_options:
// --help, --version, --config; a bad or unknown flag throws ctmq::Error).
// Returns false when the benchmark should exit 0 (after --help or --version).
inline bool parse_flags(int argc, char** argv, const std::string& name, const std::string& summary,
                        po::options_description& options) {
  const apps::AppInfo info{name, summary, {}};
  po::variables_map vm;
  return apps::parse_options(argc, argv, info, options, vm);
}

// A flag's value stored in `field`, whose current value is the default
// (apps::bound, as the executables bind their options).
template <typename T>
po::typed_value<T>* flag(T& field) {
  return apps::bound(&field);
}

// Comma-separated integers ("64,256").
template <typename T>
std::vector<T> parse_list(const std::string& text) {
  std::vector<T> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    out.push_back(static_cast<T>(std::stoll(item)));
  return out;
}

// A comma-separated list flag ("--batches 64,256") stored in `field`, whose
// current value is the default.
template <typename T>
po::typed_value<std::string>* list_flag(std::vector<T>& field) {
  std::string text;
  for (const T& value : field) text += (text.empty() ? "" : ",") + std::to_string(value);
  return po::value<std::string>()->default_value(text)->notifier(
      [&field](const std::string& value) { field = parse_list<T>(value); });
}

// What every timing benchmark takes: torch threads (per process), timed steps
// per measurement and measurements per figure (the best is kept). Each
// benchmark sets its defaults: Timing{threads, steps, repeats}.
struct Timing {
  int threads = 1;
  int steps = 1;
  int repeats = 1;
};

// --threads, --steps and --repeats, stored in `timing` (defaults: its values).
inline void add_timing_flags(po::options_description& options, Timing& timing) {
  options.add_options()("threads", flag(timing.threads), "torch threads per process")(
      "steps", flag(timing.steps), "timed steps per measurement")(
      "repeats", flag(timing.repeats), "measurements per figure (the best is kept)");
}

// The children's flag that takes two values, BATCH BITS (--child 64 32):
// stores them in `batch` and `bits` and sets `given`.
inline po::typed_value<std::vector<std::string>>* batch_bits_flag(int64_t& batch, int& bits,
                                                                  bool& given) {
  return po::value<std::vector<std::string>>()
      ->multitoken()
      ->value_name("BATCH BITS")
      ->notifier([&batch, &bits, &given](const std::vector<std::string>& values) {
        CTMQ_CHECK(values.size() == 2, "expected two values, BATCH BITS; found " << values.size());
        batch = std::stoll(values[0]);
        bits = std::stoi(values[1]);
        given = true;
      });
}

using Clock = std::chrono::steady_clock;

// Wall seconds since `start`.
inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Runs `command` through the shell and parses the last line of its stdout as
// JSON (children print one JSON line last). Throws ctmq::Error naming the
// command when it cannot start, exits non-zero (with its output) or prints
// nothing.
inline nlohmann::json run_child(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  CTMQ_CHECK(pipe != nullptr, "cannot run " << command);
  std::string output;
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), pipe)) output += buffer;
  const int status = pclose(pipe);
  CTMQ_CHECK(status == 0, command << " failed (status " << status << "); output:\n" << output);
  const size_t end = output.find_last_not_of('\n');
  CTMQ_CHECK(end != std::string::npos, command << " printed nothing");
  const size_t begin = output.rfind('\n', end);
  const size_t first = begin == std::string::npos ? 0 : begin + 1;
  return nlohmann::json::parse(output.substr(first, end + 1 - first));
}

// The training benchmarks' network (docs/performance.md, "Training"):
// ResNet-20 of `width` for 3x32x32 inputs and 10 classes at W = A = `bits`
// (32: full precision), in train mode.
inline std::shared_ptr<ctmq::model::NetworkImpl> make_resnet20(int64_t width, int bits) {
  ctmq::model::ModelOptions options;
  options.architecture = ctmq::model::Architecture::kResNet20;
  options.width = width;
  options.in_channels = 3;
  options.num_classes = 10;
  auto net = ctmq::model::make_network(options);
  net->set_bit_depths({bits, bits});
  net->train();
  return net;
}

}  // namespace ctmq::bench
