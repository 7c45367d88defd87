// Network files: round trips, mismatch messages, corrupt files, carrying
// weights to another bit depth, and the quantized-layer view.
#include "ctmq/model/weights_io.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "ctmq/common/error.h"
#include "ctmq/quant/quantizers.h"
#include "test_support.h"

namespace ctmq::model {
namespace {

using ctmq::testing::error_of;

ModelOptions lsq_options() {
  ModelOptions o;
  o.width = 8;
  o.quant.weight = quant::WeightQuantizer::kLsq;
  o.quant.activation = quant::ActivationQuantizer::kLsq;
  o.quant.weight_granularity = quant::Granularity::kPerChannel;
  return o;
}

// One training forward/backward/SGD step, so BN statistics and LSQ steps
// are no longer at their initial values.
void train_one_step(NetworkImpl& net, const torch::Tensor& x) {
  net.train();
  torch::optim::SGD sgd(net.parameters(), 0.05);
  sgd.zero_grad();
  net.forward(x).logsumexp(1).mean().backward();
  sgd.step();
}

TEST(WeightsIo, SaveThenLoadNetworkGivesTheSameNetwork) {
  ctmq::testing::TempDir dir;
  torch::manual_seed(1);
  auto net = make_network(lsq_options());
  net->set_bit_depths({4, 3});
  const torch::Tensor x = torch::randn({4, 1, 28, 28});
  train_one_step(*net, x);
  const std::string path = dir.path() + "/sub/net.pt";
  save_network(*net, path);

  auto loaded = load_network(path);
  EXPECT_EQ(loaded->bit_depths(), (quant::BitDepths{4, 3}));
  EXPECT_EQ(loaded->options().width, 8);
  EXPECT_EQ(loaded->options().quant.weight, quant::WeightQuantizer::kLsq);
  EXPECT_EQ(loaded->options().quant.weight_granularity, quant::Granularity::kPerChannel);
  const auto a = net->named_parameters(), b = loaded->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
  net->eval();
  loaded->eval();
  EXPECT_TRUE(torch::equal(net->forward(x), loaded->forward(x)));
  EXPECT_EQ(read_network_info(path).options.architecture, Architecture::kSmallResNet);
  // Only the final file remains (no temporaries).
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path() + "/sub"))
    files += !!e.exists();
  EXPECT_EQ(files, 1);
}

TEST(WeightsIo, LoadIntoAnotherArchitectureSaysWhatDiffers) {
  ctmq::testing::TempDir dir;
  ModelOptions r20;
  r20.architecture = Architecture::kResNet20;
  r20.in_channels = 3;
  auto saved = make_network(r20);
  save_network(*saved, dir.path() + "/r20.pt");
  auto small = make_network(ModelOptions{});
  const std::string message = error_of([&] { load_weights_into(*small, dir.path() + "/r20.pt"); });
  EXPECT_NE(message.find("checkpoint " + dir.path() +
                         "/r20.pt: architecture resnet20, 10 classes, "
                         "3 input channels, width 16; this stage builds small-resnet, 10 classes, "
                         "1 input channel, width 16"),
            std::string::npos)
      << message;
}

TEST(WeightsIo, CorruptTruncatedAndMissingFilesNameTheFile) {
  ctmq::testing::TempDir dir;
  auto net = make_network(ModelOptions{});
  const std::string path = dir.path() + "/net.pt";
  save_network(*net, path);
  const auto size = std::filesystem::file_size(path);
  const std::string truncated = dir.path() + "/truncated.pt";
  std::filesystem::copy_file(path, truncated);
  std::filesystem::resize_file(truncated, size / 2);
  const std::string garbage = dir.path() + "/garbage.pt";
  std::ofstream(garbage) << "not a network";
  for (const std::string& bad : {truncated, garbage, dir.path() + "/missing.pt"}) {
    const std::string m1 = error_of([&] { load_network(bad); });
    EXPECT_NE(m1.find(bad), std::string::npos) << m1;
    const std::string m2 = error_of([&] { load_weights_into(*net, bad); });
    EXPECT_NE(m2.find(bad), std::string::npos) << m2;
  }
}

TEST(WeightsIo, AFlippedBitInAnyTensorIsRefusedByNameOnEveryLoad) {
  ctmq::testing::TempDir dir;
  torch::manual_seed(2);
  auto net = make_network(ModelOptions{});
  const std::string path = dir.path() + "/final.pt";
  save_network(*net, path);
  std::ifstream in(path, std::ios::binary);
  const std::string clean((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Tensors are stored uncompressed in torch's zip: find each one's bytes and
  // flip one bit of one float, leaving size and zip structure intact.
  int tried = 0;
  for (const auto& p : net->named_parameters()) {
    const torch::Tensor t = p.value().detach().contiguous();
    if (t.numel() < 4 || t.min().item<float>() == t.max().item<float>()) continue;  // not unique
    const std::string pattern(static_cast<const char*>(t.data_ptr()), 16);
    const size_t at = clean.find(pattern);
    ASSERT_NE(at, std::string::npos) << p.key();
    std::string bytes = clean;
    bytes[at + 9] = static_cast<char>(bytes[at + 9] ^ 0x10);
    const std::string bad = dir.path() + "/flipped.pt";
    std::ofstream(bad, std::ios::binary) << bytes;
    const std::string m1 = error_of([&] { load_network(bad); });
    EXPECT_NE(m1.find(bad + " fails its checksum"), std::string::npos) << p.key() << ": " << m1;
    auto target = make_network(ModelOptions{});
    target->set_bit_depths({2, 2});
    const std::string m2 = error_of([&] { load_weights_into(*target, bad); });
    EXPECT_NE(m2.find(bad + " fails its checksum"), std::string::npos) << p.key() << ": " << m2;
    ++tried;
  }
  EXPECT_GE(tried, 8);                  // every convolution and the classifier
  EXPECT_NO_THROW(load_network(path));  // the clean file still loads
}

// Regression (issue [7/12]): only the tensors were checksummed, so a byte
// changed elsewhere (zip headers, pickles, TorchScript code entries) was
// ignored, reported without the file's name, or crashed LibTorch's parser.
// Format 3 seals the whole file; every changed byte is refused by name.
TEST(WeightsIo, AChangedByteAnywhereInTheFileIsRefusedByName) {
  ctmq::testing::TempDir dir;
  ModelOptions options;
  options.width = 4;
  auto net = make_network(options);
  const std::string path = dir.path() + "/final.pt";
  save_network(*net, path);
  std::ifstream in(path, std::ios::binary);
  const std::string clean((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string bad = dir.path() + "/damaged.pt";
  int tried = 0;
  // Every 61st byte (zip structure, pickles, code, tensors), and each of the
  // footer's 24 bytes.
  std::vector<size_t> positions;
  for (size_t at = 0; at < clean.size(); at += 61) positions.push_back(at);
  for (size_t at = clean.size() - 24; at < clean.size(); ++at) positions.push_back(at);
  for (const size_t at : positions) {
    std::string bytes = clean;
    bytes[at] = static_cast<char>(bytes[at] ^ 0x01);
    std::ofstream(bad, std::ios::binary | std::ios::trunc) << bytes;
    const std::string m = error_of([&] { load_network(bad); });
    ASSERT_NE(m.find(bad), std::string::npos)
        << "byte " << at << " of " << clean.size() << ": " << m;
    ++tried;
  }
  EXPECT_GT(tried, 100);
  EXPECT_NO_THROW(load_network(path));
}

TEST(WeightsIo, LoadIntoLowerBitDepthKeepsWeightsAndReinitialisesSteps) {
  ctmq::testing::TempDir dir;
  torch::manual_seed(2);
  auto previous = make_network(lsq_options());
  previous->set_bit_depths({4, 4});
  train_one_step(*previous, torch::randn({4, 1, 28, 28}));
  save_network(*previous, dir.path() + "/w4a4.pt");

  auto next = make_network(lsq_options());
  next->set_bit_depths({3, 3});
  load_weights_into(*next, dir.path() + "/w4a4.pt");
  EXPECT_EQ(next->bit_depths(), (quant::BitDepths{3, 3}));
  auto prev_params = previous->named_parameters();
  auto prev_buffers = previous->named_buffers();
  for (const auto& b : next->named_buffers()) {
    EXPECT_TRUE(torch::equal(b.value(), prev_buffers[b.key()])) << b.key();
  }
  int steps = 0;
  for (const auto& p : next->named_parameters()) {
    const std::string& name = p.key();
    const bool edge = name.rfind("conv1.", 0) == 0 || name.rfind("fc.", 0) == 0 ||
                      name.find("downsample") != std::string::npos;
    if (name.size() > 11 && name.substr(name.size() - 11) == "weight_step" && edge) {
      EXPECT_EQ(p.value().abs().sum().item<double>(), 0.0) << name;  // full precision
    } else if (name.size() > 11 && name.substr(name.size() - 11) == "weight_step") {
      const std::string weight_name = name.substr(0, name.size() - 5);  // "...weight"
      const torch::Tensor expected = quant::lsq_initial_step(next->named_parameters()[weight_name],
                                                             3, quant::Granularity::kPerChannel);
      EXPECT_LT((p.value() - expected).abs().max().item<double>(), 1e-6) << name;
      ++steps;
    } else if (name.size() > 10 && name.substr(name.size() - 10) == "input_step") {
      EXPECT_EQ(p.value().item<double>(), 0.0) << name;  // re-initialised from the next batch
      EXPECT_GT(prev_params[name].item<double>(), 0.0) << name;
    } else {
      EXPECT_TRUE(torch::equal(p.value(), prev_params[name])) << name;
    }
  }
  EXPECT_EQ(steps, 6);
}

TEST(WeightsIo, QuantizedLayersListsEveryLayerWithItsBits) {
  ModelOptions o;
  o.quant.edge_layer_bits = 8;
  auto net = make_network(o);
  net->set_bit_depths({2, 2});
  const auto layers = quantized_layers(*net);
  ASSERT_EQ(layers.size(), 11u);
  EXPECT_EQ(layers.front().name, "conv1");
  EXPECT_EQ(layers.front().bits, 8);
  EXPECT_EQ(layers.back().name, "fc");
  for (const auto& l : layers) {
    if (l.name == "layer2.0.conv1") {
      EXPECT_EQ(l.bits, 2);
      EXPECT_LT((l.quantized_weight -
                 quant::dorefa_weight(l.latent_weight, 2, quant::Granularity::kPerTensor))
                    .abs()
                    .max()
                    .item<double>(),
                1e-7);
      EXPECT_EQ(std::get<0>(torch::_unique(l.quantized_weight)).numel(), 4);
    }
  }
}

}  // namespace
}  // namespace ctmq::model
