// Helpers shared by the test suites.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "ctmq/plan/stage_plan.h"

namespace ctmq::testing {

// The message of the ctmq::Error that `f` throws, or "" when it throws none
// (any other exception propagates).
std::string error_of(const std::function<void()>& f);

// A stage plan of `stages` in this order, each {name, W = A bits, init} and
// `epochs` epochs (index = position); every other field is Stage's default.
struct PlannedStage {
  std::string name;
  int bits;
  std::string init;
};
plan::StagePlan stage_plan_of(const std::vector<PlannedStage>& stages, int epochs);

// Directory of the Fashion-MNIST IDX files (env CTMQ_FASHION_MNIST_DIR,
// default /usr/share/datasets/fashion-mnist).
std::string fashion_mnist_dir();
// Build directory holding the executables (env CTMQ_BIN_DIR).
std::string bin_dir();
// Source tree root (env CTMQ_SOURCE_DIR).
std::string source_dir();

// The Python with PyTorch 2.x and tensorboard that the peer tests run
// ($CTMQ_PEER_PYTHON, else the one CMake was given); "" when there is none
// (those tests then skip, saying how to get it: pipeline/install-torch.sh).
std::string peer_python();

// The first `count` images of Fashion-MNIST's training split, read straight
// from the gzipped IDX files with zlib (independent of ctmq's data layer, so
// it can serve as an oracle): images uint8 [count, 1, 28, 28], labels int64.
struct LabelledImages {
  torch::Tensor images;
  torch::Tensor labels;
};
LabelledImages load_fashion_mnist_train(int64_t count);

// A fresh directory under the system temp dir, removed with its contents on
// destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace ctmq::testing
