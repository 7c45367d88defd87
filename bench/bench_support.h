// What the benchmarks share (header only: bench/CMakeLists.txt makes one
// executable per bench/*.cc): wall-clock timing, running a child benchmark
// process, and the training benchmarks' model.
#pragma once

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "ctmq/common/error.h"
#include "ctmq/model/network.h"

namespace ctmq::bench {

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
