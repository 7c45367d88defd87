// Importing torchvision's ResNet-18 weights: both forms torch.save produces
// (a plain dict and model.state_dict() as it is), checked against the logits
// torchvision itself computes (Debian's python3-torchvision).
#include "ctmq/model/torchvision_import.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>

#include "ctmq/common/error.h"
#include "ctmq/model/torch_pickle.h"
#include "test_support.h"

namespace ctmq::model {
namespace {

constexpr const char* kPython = "/usr/bin/python3";

bool torchvision_available() {
  const std::string command =
      std::string(kPython) + " -c 'import torch, torchvision' > /dev/null 2>&1";
  return std::system(command.c_str()) == 0;
}

// Writes resnet18(num_classes=10) with random BatchNorm statistics in both
// forms, and a fixed input with torchvision's eval-mode logits.
const char* kScript = R"(
import sys, torch, torchvision
torch.set_num_threads(1)
torch.manual_seed(0)
out = sys.argv[1]
model = torchvision.models.resnet18(num_classes=10)
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
            m.num_batches_tracked.fill_(7)
model.eval()
x = torch.randn(2, 3, 64, 64)
with torch.no_grad():
    logits = model(x)
sd = model.state_dict()
assert hasattr(sd, "_metadata")
torch.save(sd, out + "/ordered.pt")
torch.save({k: v for k, v in sd.items()}, out + "/plain.pt")
torch.save({"input": x, "logits": logits}, out + "/io.pt")
)";

// The Python side runs once for the suite (it takes seconds).
class TorchvisionImport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    available_ = torchvision_available();
    if (!available_) return;
    dir_ = new ctmq::testing::TempDir();
    std::ofstream(dir_->path() + "/make.py") << kScript;
    const std::string command =
        std::string(kPython) + " " + dir_->path() + "/make.py " + dir_->path();
    script_ok_ = std::system(command.c_str()) == 0;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    if (!available_) {
      GTEST_SKIP() << kPython << " cannot import torchvision (install python3-torchvision)";
    }
    ASSERT_TRUE(script_ok_) << "the torchvision script failed; see its output above";
    for (auto& [name, t] : read_torch_saved_tensors(path("io.pt"))) io_[name] = t;
    ASSERT_EQ(io_.count("input"), 1u);
    ASSERT_EQ(io_.count("logits"), 1u);
  }

  static std::string path(const std::string& name) { return dir_->path() + "/" + name; }

  std::shared_ptr<NetworkImpl> resnet18(int64_t classes) {
    ModelOptions o;
    o.architecture = Architecture::kResNet18;
    o.in_channels = 3;
    o.num_classes = classes;
    o.block = Block::kTorchvision;  // what torchvision computes (docs/models.md)
    return make_network(o);
  }

  static inline bool available_ = false;
  static inline bool script_ok_ = false;
  static inline ctmq::testing::TempDir* dir_ = nullptr;
  std::map<std::string, torch::Tensor> io_;
};

TEST_F(TorchvisionImport, BothSavedFormsGiveTorchvisionsLogits) {
  for (const char* form : {"plain.pt", "ordered.pt"}) {
    auto net = resnet18(10);
    import_torchvision_state_dict(*net, path(form));
    net->eval();
    torch::NoGradGuard no_grad;
    const torch::Tensor logits = net->forward(io_["input"]);
    EXPECT_LT((logits - io_["logits"]).abs().max().item<double>(), 1e-4) << form;
    EXPECT_GT(io_["logits"].abs().max().item<double>(), 1e-3);  // not trivially zero
    const auto buffers = net->named_buffers();
    EXPECT_EQ(buffers["layer3.1.bn2.num_batches_tracked"].item<int64_t>(), 7) << form;
  }
}

TEST_F(TorchvisionImport, WrongClassCountNamesTheTensor) {
  auto net = resnet18(5);
  try {
    import_torchvision_state_dict(*net, path("ordered.pt"));
    FAIL() << "no error";
  } catch (const ctmq::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'fc.weight' has shape [10, 512]"), std::string::npos) << what;
  }
}

TEST(TorchPickle, RejectsFilesThatAreNotTorchSaveZips) {
  ctmq::testing::TempDir dir;
  const std::string path = dir.path() + "/bad.pt";
  std::ofstream(path) << "garbage";
  try {
    read_torch_saved_tensors(path);
    FAIL() << "no error";
  } catch (const ctmq::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_torch_saved_tensors(dir.path() + "/missing.pt"), ctmq::Error);
}

}  // namespace
}  // namespace ctmq::model
