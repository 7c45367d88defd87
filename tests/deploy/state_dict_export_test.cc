// ctmq-export --format state-dict (deploy/state_dict_export.h) against the
// PyTorch rebuild analysis/ctmq_analysis/torch_model.py: for networks of every
// quantizer kind, granularity, edge_layer_bits 8, both block forms and two
// architectures, the C++ logits on real Fashion-MNIST images are written next
// to the export and tests/deploy/state_dict_check.py (Debian's
// /usr/bin/python3, or $CTMQ_PYTHON) must reproduce them within its stated
// tolerance and refuse damaged exports. Also the exporter's own refusals.
#include "ctmq/deploy/state_dict_export.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "ctmq/common/atomic_file.h"
#include "test_support.h"

namespace ctmq::deploy {
namespace {

constexpr double kMean = 0.2860, kStd = 0.3530;  // Fashion-MNIST's training statistics

struct Setting {
  std::string name;
  model::Architecture architecture;
  model::Block block;
  quant::QuantOptions quant;
  quant::BitDepths bits;
};

quant::QuantOptions kinds(quant::WeightQuantizer w, quant::ActivationQuantizer a,
                          quant::Granularity g = quant::Granularity::kPerTensor, int edge = 32) {
  quant::QuantOptions q;
  q.weight = w;
  q.activation = a;
  q.weight_granularity = g;
  q.edge_layer_bits = edge;
  return q;
}

std::vector<Setting> settings() {
  using A = quant::ActivationQuantizer;
  using W = quant::WeightQuantizer;
  using G = quant::Granularity;
  const auto small = model::Architecture::kSmallResNet;
  const auto bireal = model::Block::kBiReal;
  return {
      {"fp-dorefa-signed", small, bireal, kinds(W::kDoReFa, A::kSigned), {32, 32}},
      {"w4a4-dorefa-signed", small, bireal, kinds(W::kDoReFa, A::kSigned), {4, 4}},
      {"w2a2-lsq-lsq-per-channel", small, bireal, kinds(W::kLsq, A::kLsq, G::kPerChannel), {2, 2}},
      {"w2a2-lsq-lsq", small, bireal, kinds(W::kLsq, A::kLsq), {2, 2}},
      {"w3a3-dorefa-pact", small, bireal, kinds(W::kDoReFa, A::kPact), {3, 3}},
      {"fp-pact", small, bireal, kinds(W::kDoReFa, A::kPact), {32, 32}},
      {"w8a8-dorefa-unsigned-edge8",
       small,
       bireal,
       kinds(W::kDoReFa, A::kUnsigned, G::kPerTensor, 8),
       {8, 8}},
      {"w4a4-lsq-pact-edge8-per-channel",
       small,
       bireal,
       kinds(W::kLsq, A::kPact, G::kPerChannel, 8),
       {4, 4}},
      {"w1a1-dorefa-signed", small, bireal, kinds(W::kDoReFa, A::kSigned), {1, 1}},
      {"w1a1-lsq-lsq", small, bireal, kinds(W::kLsq, A::kLsq), {1, 1}},
      {"w2a32-dorefa-per-channel-unsigned",
       small,
       bireal,
       kinds(W::kDoReFa, A::kUnsigned, G::kPerChannel),
       {2, 32}},
      {"fp-torchvision",
       small,
       model::Block::kTorchvision,
       kinds(W::kDoReFa, A::kSigned),
       {32, 32}},
      {"w2a2-resnet20-torchvision",
       model::Architecture::kResNet20,
       model::Block::kTorchvision,
       kinds(W::kDoReFa, A::kSigned),
       {2, 2}},
  };
}

torch::Tensor normalised(const torch::Tensor& pixels) {
  return pixels.to(torch::kFloat)
      .mul_(1.f / 255.f)
      .sub_(static_cast<float>(kMean))
      .mul_(static_cast<float>(1.0 / kStd));
}

// A network of `s` whose state is not that of a fresh one: BatchNorm affine
// parameters drawn at random, running statistics and LSQ input steps from
// training-mode batches of real images, PACT clips away from 1.
std::shared_ptr<model::NetworkImpl> network(const Setting& s, const torch::Tensor& pixels) {
  model::ModelOptions o;
  o.architecture = s.architecture;
  o.width = 8;
  o.block = s.block;
  o.quant = s.quant;
  o.preprocessing.mean = {kMean};
  o.preprocessing.std_dev = {kStd};
  torch::manual_seed(11);
  auto net = model::make_network(o);
  net->set_bit_depths(s.bits);
  torch::NoGradGuard no_grad;
  for (const auto& p : net->named_parameters()) {
    const std::string& name = p.key();
    if (name.find("bn") != std::string::npos || name.find("downsample.1") != std::string::npos) {
      if (name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0)
        p.value().uniform_(0.5, 1.5);
      else
        p.value().uniform_(-0.3, 0.3);
    }
    if (name.find("input_clip") != std::string::npos) p.value().uniform_(0.6, 1.6);
  }
  net->train();
  for (int b = 0; b < 3; ++b) net->forward(normalised(pixels.slice(0, 64 * b, 64 * (b + 1))));
  net->eval();
  return net;
}

void write_tensors(const std::string& path,
                   const std::vector<std::pair<std::string, torch::Tensor>>& t) {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
  for (const auto& [k, v] : t) dict.insert(k, v);
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  write_file_atomically(path, std::string(bytes.begin(), bytes.end()));
}

std::string python() {
  const char* p = std::getenv("CTMQ_PYTHON");
  return p != nullptr && *p != '\0' ? p : "/usr/bin/python3";
}

TEST(StateDictExport, PyTorchRebuildReproducesTheLogitsOfEveryQuantizerKind) {
  ctmq::testing::TempDir dir;
  const auto data = ctmq::testing::load_fashion_mnist_train(256);
  const torch::Tensor test_pixels = data.images.slice(0, 192, 256);  // not used for BatchNorm
  for (const Setting& s : settings()) {
    SCOPED_TRACE(s.name);
    auto net = network(s, data.images);
    const std::string out = dir.path() + "/" + s.name + ".pt";
    const size_t bytes = write_state_dict_export(*net, out, "test:" + s.name);
    EXPECT_EQ(std::filesystem::file_size(out), bytes);
    ASSERT_TRUE(std::filesystem::exists(state_dict_description_path(out)));
    torch::NoGradGuard no_grad;
    write_tensors(dir.path() + "/" + s.name + ".expected",
                  {{"pixels", test_pixels}, {"logits", net->forward(normalised(test_pixels))}});
  }
  // Debian's PyTorch 1.13 and the PyPI PyTorch 2.x (torch.load with
  // weights_only=True, 2.x's default) both rebuild every export.
  std::vector<std::string> pythons = {python()};
  if (!ctmq::testing::peer_python().empty())
    pythons.push_back(ctmq::testing::peer_python());
  else
    std::cout << "no PyTorch 2.x environment (bash pipeline/install-torch.sh): checked with "
              << python() << " only\n";
  for (const std::string& interpreter : pythons) {
    SCOPED_TRACE(interpreter);
    const std::string log = dir.path() + "/check.log";
    const std::string cmd = "PYTHONPATH='" + ctmq::testing::source_dir() + "/analysis' '" +
                            interpreter + "' '" + ctmq::testing::source_dir() +
                            "/tests/deploy/state_dict_check.py' '" + dir.path() + "' > '" + log +
                            "' 2>&1";
    const int rc = std::system(cmd.c_str());
    const std::string output = read_file(log);
    std::cout << output;
    EXPECT_EQ(rc, 0) << output;
    EXPECT_NE(output.find("state_dict_check: PASS"), std::string::npos) << output;
  }
}

TEST(StateDictExport, RefusesAnUninitialisedLsqInputStep) {
  model::ModelOptions o;
  o.width = 4;
  o.quant.activation = quant::ActivationQuantizer::kLsq;
  o.preprocessing.mean = {kMean};
  o.preprocessing.std_dev = {kStd};
  auto net = model::make_network(o);
  net->set_bit_depths({2, 2});
  ctmq::testing::TempDir dir;
  const std::string out = dir.path() + "/x.pt";
  const std::string error =
      ctmq::testing::error_of([&] { write_state_dict_export(*net, out, "net.pt"); });
  EXPECT_NE(error.find("net.pt: the LSQ input step of layer layer1.0.conv1 was never initialised"),
            std::string::npos)
      << error;
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_FALSE(std::filesystem::exists(state_dict_description_path(out)));
}

TEST(StateDictExport, RefusesANetworkWithoutInputNormalisation) {
  model::ModelOptions o;
  o.width = 4;
  auto net = model::make_network(o);
  ctmq::testing::TempDir dir;
  const std::string error = ctmq::testing::error_of(
      [&] { write_state_dict_export(*net, dir.path() + "/x.pt", "old.pt"); });
  EXPECT_NE(error.find("old.pt: the network records no input normalisation"), std::string::npos)
      << error;
}

}  // namespace
}  // namespace ctmq::deploy
