// Importing torchvision's ResNet-18 weights: every form torch.save produces
// (zip and legacy format, a plain dict and model.state_dict() as it is, files
// of PyTorch < 0.4.1 without num_batches_tracked), checked against the logits
// torchvision itself computes and against torchvision's own strict
// load_state_dict (Debian's python3-torch 1.13 and python3-torchvision); the
// layouts it refuses (DataParallel prefix, nested checkpoints) and the class
// count option.
#include "ctmq/model/torchvision_import.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
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

// Writes resnet18(num_classes=10) with random BatchNorm statistics in every
// form below, a fixed input with torchvision's eval-mode logits, and small
// files for the reader. torchvision's strict load_state_dict is the oracle of
// which files are valid: the script fails unless it accepts each *.pt that
// the C++ side must import and refuses missing_v2.pt.
const char* kScript = R"(
import collections, copy, sys, torch, torchvision
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
plain = {k: v for k, v in sd.items()}

def without_counts(metadata_version):
    d = collections.OrderedDict((k, v) for k, v in sd.items() if "num_batches_tracked" not in k)
    if metadata_version is not None:
        d._metadata = copy.deepcopy(sd._metadata)
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                d._metadata[name]["version"] = metadata_version
    return d

legacy = dict(_use_new_zipfile_serialization=False)
torch.save(sd, out + "/ordered.pt")
torch.save(plain, out + "/plain.pt")
torch.save(sd, out + "/legacy_ordered.pt", **legacy)
torch.save(plain, out + "/legacy_plain.pt", **legacy)
# PyTorch < 0.4.1: no num_batches_tracked and no _metadata (legacy format).
torch.save(dict(without_counts(None)), out + "/legacy_untracked.pt", **legacy)
torch.save(dict(without_counts(None)), out + "/zip_untracked.pt")
torch.save(without_counts(1), out + "/meta1_untracked.pt")
torch.save(without_counts(2), out + "/missing_v2.pt")  # strict load refuses it
accepted = ["ordered", "plain", "legacy_ordered", "legacy_plain", "legacy_untracked",
            "zip_untracked", "meta1_untracked"]
for name in accepted + ["missing_v2"]:
    m = torchvision.models.resnet18(num_classes=10)
    try:
        m.load_state_dict(torch.load(out + "/" + name + ".pt"), strict=True)
        ok = True
    except RuntimeError:
        ok = False
    assert ok == (name != "missing_v2"), name
    if "untracked" in name:
        assert m.bn1.num_batches_tracked.item() == 0, name  # what torch fills in

dp = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
torch.save(dp, out + "/dataparallel.pt")
optimizer = {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]}
torch.save({"epoch": 90, "arch": "resnet18", "state_dict": dp, "best_acc1": 69.7,
            "optimizer": optimizer}, out + "/checkpoint_dp.pt")
torch.save({"epoch": 3, "model": plain}, out + "/checkpoint_model.pt")
imagenet = dict(plain)
imagenet["fc.weight"] = torch.randn(1000, 512)
imagenet["fc.bias"] = torch.randn(1000)
torch.save(imagenet, out + "/imagenet.pt")
torch.save({"input": x, "logits": logits}, out + "/io.pt")

# Small files for the reader: shared storages, offsets, strides, dtypes.
a = torch.arange(6, dtype=torch.float32).reshape(2, 3)
small = {"a": a, "row": a[1], "t": a.t(), "count": torch.tensor(3),
         "half": torch.tensor([0.5, -2.0], dtype=torch.float16),
         "double": torch.tensor([1.25], dtype=torch.float64)}
torch.save(small, out + "/small_zip.pt")
torch.save(small, out + "/small_legacy.pt", **legacy)
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

  // Every parameter and buffer, by name.
  static std::map<std::string, torch::Tensor> state(NetworkImpl& net) {
    std::map<std::string, torch::Tensor> s;
    for (auto& p : net.named_parameters()) s[p.key()] = p.value().clone();
    for (auto& b : net.named_buffers()) s[b.key()] = b.value().clone();
    return s;
  }

  // The message of the ctmq::Error that importing `file` throws ("" if none).
  std::string import_error(const std::string& file, int64_t classes,
                           PretrainedClassifier classifier = PretrainedClassifier::kUse) {
    auto net = resnet18(classes);
    try {
      import_torchvision_state_dict(*net, path(file), classifier);
    } catch (const ctmq::Error& e) {
      return e.what();
    }
    return "";
  }

  static inline bool available_ = false;
  static inline bool script_ok_ = false;
  static inline ctmq::testing::TempDir* dir_ = nullptr;
  std::map<std::string, torch::Tensor> io_;
};

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE((text).find(part), std::string::npos) << "'" << (part) << "' not in: " << (text)

TEST_F(TorchvisionImport, EverySavedFormGivesTorchvisionsLogits) {
  for (const char* form : {"plain.pt", "ordered.pt", "legacy_plain.pt", "legacy_ordered.pt"}) {
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

// Issue 10: every file torchvision's strict load accepts (the script checks
// that it does) imports to the same tensors; num_batches_tracked is 0 where
// the file has none, as torch fills in.
TEST_F(TorchvisionImport, EveryAcceptedFileImportsIdenticalTensors) {
  auto reference_net = resnet18(10);
  import_torchvision_state_dict(*reference_net, path("ordered.pt"));
  const auto reference = state(*reference_net);
  const std::map<std::string, TorchFileFormat> files = {
      {"ordered.pt", TorchFileFormat::kZip},
      {"plain.pt", TorchFileFormat::kZip},
      {"legacy_ordered.pt", TorchFileFormat::kLegacy},
      {"legacy_plain.pt", TorchFileFormat::kLegacy},
      {"legacy_untracked.pt", TorchFileFormat::kLegacy},
      {"zip_untracked.pt", TorchFileFormat::kZip},
      {"meta1_untracked.pt", TorchFileFormat::kZip}};
  for (const auto& [file, format] : files) {
    EXPECT_EQ(read_torch_saved_file(path(file)).format, format) << file;
    torch::manual_seed(1);  // a different initialisation than the reference's
    auto net = resnet18(10);
    for (auto& b : net->named_buffers()) {
      if (b.key().find("num_batches_tracked") != std::string::npos) b.value().fill_(5);
    }
    import_torchvision_state_dict(*net, path(file));
    const bool untracked = file.find("untracked") != std::string::npos;
    size_t compared = 0;
    for (const auto& [name, tensor] : state(*net)) {
      if (name.find("num_batches_tracked") != std::string::npos) {
        EXPECT_EQ(tensor.item<int64_t>(), untracked ? 0 : 7) << file << " " << name;
      } else {
        EXPECT_TRUE(torch::equal(tensor, reference.at(name))) << file << " " << name;
      }
      ++compared;
    }
    EXPECT_EQ(compared, reference.size()) << file;
  }
}

// The same weights loaded and saved again by the PyPI PyTorch 2.x
// (weights_only=True, its default): its zip records (byteorder,
// serialization_id, format version) import to identical tensors.
TEST_F(TorchvisionImport, FilesSavedByPyTorch2ImportToIdenticalTensors) {
  const std::string python = ctmq::testing::peer_python();
  if (python.empty())
    GTEST_SKIP() << "no PyTorch 2.x environment (bash pipeline/install-torch.sh; pipeline/test.sh "
                    "passes it as CTMQ_PEER_PYTHON)";
  const std::string command =
      "'" + python +
      "' -c 'import sys, torch; d = sys.argv[1]\n"
      "assert int(torch.__version__.split(\".\")[0]) >= 2, torch.__version__\n"
      "for n in (\"ordered\", \"plain\", \"small_zip\"):\n"
      "    torch.save(torch.load(d + \"/\" + n + \".pt\", weights_only=True), d + \"/torch2_\" + n "
      "+ \".pt\")' '" +
      dir_->path() + "'";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  auto reference_net = resnet18(10);
  import_torchvision_state_dict(*reference_net, path("ordered.pt"));
  const auto reference = state(*reference_net);
  for (const char* file : {"torch2_ordered.pt", "torch2_plain.pt"}) {
    EXPECT_EQ(read_torch_saved_file(path(file)).format, TorchFileFormat::kZip) << file;
    auto net = resnet18(10);
    import_torchvision_state_dict(*net, path(file));
    const auto imported = state(*net);
    ASSERT_EQ(imported.size(), reference.size()) << file;
    for (const auto& [name, tensor] : imported)
      EXPECT_TRUE(torch::equal(tensor, reference.at(name))) << file << " " << name;
    net->eval();
    torch::NoGradGuard no_grad;
    EXPECT_LT((net->forward(io_["input"]) - io_["logits"]).abs().max().item<double>(), 1e-4)
        << file;
  }
  const auto small = read_torch_saved_tensors(path("small_zip.pt"));
  const auto small2 = read_torch_saved_tensors(path("torch2_small_zip.pt"));
  ASSERT_EQ(small.size(), small2.size());
  for (const auto& [name, tensor] : small) {
    bool found = false;
    for (const auto& [name2, tensor2] : small2) {
      if (name2 != name) continue;
      found = true;
      EXPECT_EQ(tensor2.scalar_type(), tensor.scalar_type()) << name;
      EXPECT_EQ(tensor2.sizes(), tensor.sizes()) << name;
      EXPECT_TRUE(torch::equal(tensor2, tensor)) << name;
    }
    EXPECT_TRUE(found) << name;
  }
}

TEST_F(TorchvisionImport, MetadataSaysTheBatchCountsAreMissing) {
  // _metadata at BatchNorm version 2 promises num_batches_tracked; torchvision refuses it too.
  const std::string what = import_error("missing_v2.pt", 10);
  EXPECT_CONTAINS(what, path("missing_v2.pt"));
  EXPECT_CONTAINS(what, "has no tensor 'bn1.num_batches_tracked'");
}

TEST_F(TorchvisionImport, DataParallelPrefixIsExplained) {
  const std::string what = import_error("dataparallel.pt", 10);
  EXPECT_CONTAINS(what, path("dataparallel.pt"));
  EXPECT_CONTAINS(what, "DataParallel");
  EXPECT_CONTAINS(what, "'module.conv1.weight'");
  EXPECT_CONTAINS(what, "torch.save({k.replace('module.', '', 1): v for k, v in ckpt.items()}");
  EXPECT_EQ(what.find("has no tensor"), std::string::npos) << what;
}

TEST_F(TorchvisionImport, NestedCheckpointIsExplained) {
  // torchvision's ImageNet reference script: DataParallel weights under 'state_dict'.
  std::string what = import_error("checkpoint_dp.pt", 10);
  EXPECT_CONTAINS(what, path("checkpoint_dp.pt"));
  EXPECT_CONTAINS(what, "training checkpoint");
  EXPECT_CONTAINS(what, "epoch, arch, state_dict, best_acc1, optimizer");
  EXPECT_CONTAINS(what, "'module.' prefix");
  EXPECT_CONTAINS(what, "for k, v in ckpt['state_dict'].items()}, 'resnet18.pt')");

  what = import_error("checkpoint_model.pt", 10);
  EXPECT_CONTAINS(what, "122 tensors sit under ckpt['model']");
  EXPECT_CONTAINS(what, "torch.save(ckpt['model'], 'resnet18.pt')");
  EXPECT_EQ(what.find("prefix"), std::string::npos) << what;
}

TEST_F(TorchvisionImport, OtherClassCountNeedsTheReinitOption) {
  const std::string what = import_error("imagenet.pt", 10);
  EXPECT_CONTAINS(what, path("imagenet.pt"));
  EXPECT_CONTAINS(what, "classifier for 1000 classes");
  EXPECT_CONTAINS(what, "the data set has 10 classes");
  EXPECT_CONTAINS(what, "pretrained-classifier = reinit");
}

TEST_F(TorchvisionImport, ReinitKeepsTheFeaturesAndInitialisesTheClassifier) {
  auto reference_net = resnet18(10);
  import_torchvision_state_dict(*reference_net, path("ordered.pt"));
  const auto reference = state(*reference_net);
  std::map<std::string, torch::Tensor> fc[2];
  for (auto& imported : fc) {
    auto net = resnet18(10);
    {
      torch::NoGradGuard no_grad;
      net->named_parameters()["fc.weight"].fill_(100);  // must not survive
    }
    torch::manual_seed(9);
    import_torchvision_state_dict(*net, path("imagenet.pt"), PretrainedClassifier::kReinit);
    for (const auto& [name, tensor] : state(*net)) {
      if (name.rfind("fc.", 0) == 0) {
        imported[name] = tensor;
      } else {
        EXPECT_TRUE(torch::equal(tensor, reference.at(name))) << name;
      }
    }
  }
  // torch.nn.Linear's initialisation: U(-1/sqrt(512), 1/sqrt(512)), seeded.
  const double bound = 1 / std::sqrt(512.0);
  const torch::Tensor w = fc[0]["fc.weight"];
  ASSERT_EQ(w.sizes(), (std::vector<int64_t>{10, 512}));
  EXPECT_LE(w.abs().max().item<double>(), bound);
  EXPECT_NEAR(w.std().item<double>(), bound / std::sqrt(3.0), 0.1 * bound);
  EXPECT_LE(fc[0]["fc.bias"].abs().max().item<double>(), bound);
  EXPECT_GT(fc[0]["fc.bias"].abs().max().item<double>(), 0);
  EXPECT_TRUE(torch::equal(w, fc[1]["fc.weight"]));
  EXPECT_TRUE(torch::equal(fc[0]["fc.bias"], fc[1]["fc.bias"]));

  // The same class count: reinit still ignores the file's classifier.
  auto same = resnet18(10);
  import_torchvision_state_dict(*same, path("ordered.pt"), PretrainedClassifier::kReinit);
  EXPECT_FALSE(torch::equal(same->named_parameters()["fc.weight"], reference.at("fc.weight")));
}

TEST_F(TorchvisionImport, ReaderKeepsSharedStoragesOffsetsStridesAndDtypes) {
  for (const char* file : {"small_zip.pt", "small_legacy.pt"}) {
    std::map<std::string, torch::Tensor> t;
    for (auto& [name, tensor] : read_torch_saved_tensors(path(file))) t[name] = tensor;
    const torch::Tensor a = torch::arange(6, torch::kFloat32).reshape({2, 3});
    EXPECT_TRUE(torch::equal(t["a"], a)) << file;
    EXPECT_TRUE(torch::equal(t["row"], a[1])) << file;
    EXPECT_TRUE(torch::equal(t["t"], a.t())) << file;
    EXPECT_EQ(t["count"].dim(), 0) << file;
    EXPECT_EQ(t["count"].item<int64_t>(), 3) << file;
    EXPECT_EQ(t["half"].dtype(), torch::kFloat16) << file;
    EXPECT_TRUE(torch::equal(t["half"].to(torch::kFloat32), torch::tensor({0.5f, -2.0f}))) << file;
    EXPECT_EQ(t["double"].dtype(), torch::kFloat64) << file;
    EXPECT_EQ(t["double"].item<double>(), 1.25) << file;
  }
}

TEST_F(TorchvisionImport, TruncatedOrCorruptLegacyFilesNameTheFile) {
  std::ifstream in(path("legacy_plain.pt"), std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  ctmq::testing::TempDir dir;
  auto expect_refused = [&](const std::string& name, const std::string& content,
                            const std::string& reason) {
    const std::string file = dir.path() + "/" + name;
    std::ofstream(file, std::ios::binary) << content;
    try {
      read_torch_saved_file(file);
      ADD_FAILURE() << name << ": no error";
    } catch (const ctmq::Error& e) {
      EXPECT_CONTAINS(std::string(e.what()), file);
      EXPECT_CONTAINS(std::string(e.what()), reason);
    }
  };
  expect_refused("data_cut.pt", bytes.substr(0, bytes.size() - 100), "ends early");
  expect_refused("pickle_cut.pt", bytes.substr(0, 2000), "ends early");
  expect_refused("magic_only.pt", bytes.substr(0, 15), "ends early");
  std::string wrong_magic = bytes;
  wrong_magic[6] ^= 1;
  expect_refused("wrong_magic.pt", wrong_magic, "is not a torch.save file");
}

TEST(TorchPickle, RejectsFilesThatAreNotTorchSaveFiles) {
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

TEST(TorchvisionImportOptions, ParsesTheClassifierChoice) {
  EXPECT_EQ(parse_pretrained_classifier("use"), PretrainedClassifier::kUse);
  EXPECT_EQ(parse_pretrained_classifier("reinit"), PretrainedClassifier::kReinit);
  EXPECT_EQ(pretrained_classifier_name(PretrainedClassifier::kReinit), "reinit");
  EXPECT_THROW(parse_pretrained_classifier("keep"), ctmq::Error);
}

}  // namespace
}  // namespace ctmq::model
