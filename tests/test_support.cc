#include "test_support.h"

#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include "ctmq/common/error.h"

namespace ctmq::testing {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ctmq::Error& e) {
    return e.what();
  }
  return "";
}

plan::StagePlan stage_plan_of(const std::vector<PlannedStage>& stages, int epochs) {
  plan::StagePlan plan;
  for (const PlannedStage& planned : stages) {
    plan::Stage s;
    s.index = static_cast<int>(plan.stages.size());
    s.name = planned.name;
    s.bits = {planned.bits, planned.bits};
    s.epochs = epochs;
    s.init = planned.init;
    plan.stages.push_back(s);
  }
  return plan;
}

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::string(value) : fallback;
}

std::vector<uint8_t> gunzip_prefix(const std::string& path, size_t bytes) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) throw std::runtime_error("cannot open " + path);
  std::vector<uint8_t> data(bytes);
  int got = gzread(file, data.data(), static_cast<unsigned>(bytes));
  gzclose(file);
  if (got != static_cast<int>(bytes)) throw std::runtime_error("short read from " + path);
  return data;
}

}  // namespace

std::string fashion_mnist_dir() {
  return env_or("CTMQ_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist");
}
// Defaults: the directories this test binary was configured with (CMake sets
// both), so a test finds them however it is started (ctest, or by hand).
std::string bin_dir() { return env_or("CTMQ_BIN_DIR", CTMQ_TEST_BINARY_DIR); }
std::string source_dir() { return env_or("CTMQ_SOURCE_DIR", CTMQ_TEST_SOURCE_DIR); }
std::string peer_python() { return env_or("CTMQ_PEER_PYTHON", CTMQ_TEST_PEER_PYTHON); }

LabelledImages load_fashion_mnist_train(int64_t count) {
  const std::string dir = fashion_mnist_dir();
  auto pixels = gunzip_prefix(dir + "/train-images-idx3-ubyte.gz", 16 + count * 784);
  auto labels = gunzip_prefix(dir + "/train-labels-idx1-ubyte.gz", 8 + count);
  LabelledImages out;
  out.images = torch::from_blob(pixels.data() + 16, {count, 1, 28, 28}, torch::kUInt8).clone();
  out.labels = torch::from_blob(labels.data() + 8, {count}, torch::kUInt8).to(torch::kInt64);
  return out;
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "ctmq-test-XXXXXX").string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (!mkdtemp(buffer.data())) throw std::runtime_error("mkdtemp failed");
  path_ = buffer.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace ctmq::testing
