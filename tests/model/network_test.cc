// The architectures: torchvision's ResNet-18 names/shapes/parameter count,
// ResNet-20 and the small ResNet, bit-depth switching, and the two block forms.
#include "ctmq/model/network.h"

#include <gtest/gtest.h>

#include <map>

#include "ctmq/common/error.h"
#include "ctmq/model/resnet.h"
#include "ctmq/quant/layer_quantizer.h"
#include "ctmq/quant/quantizers.h"

namespace ctmq::model {
namespace {

int64_t count_parameters(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

ModelOptions options_for(Architecture arch, int64_t classes, int64_t in_channels) {
  ModelOptions o;
  o.architecture = arch;
  o.num_classes = classes;
  o.in_channels = in_channels;
  return o;
}

TEST(Architecture, ParsesAndNames) {
  for (auto arch : {Architecture::kResNet18, Architecture::kResNet20, Architecture::kSmallResNet}) {
    EXPECT_EQ(parse_architecture(architecture_name(arch)), arch);
  }
  EXPECT_THROW(parse_architecture("resnet50"), ctmq::Error);
}

TEST(ResNet18, HasTorchvisionNamesShapesAndParameterCount) {
  auto net = make_network(options_for(Architecture::kResNet18, 1000, 3));
  EXPECT_EQ(count_parameters(*net), 11689512);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& p : net->named_parameters()) shapes[p.key()] = p.value().sizes().vec();
  for (const auto& b : net->named_buffers()) shapes[b.key()] = b.value().sizes().vec();
  EXPECT_EQ(shapes.size(), 62u + 60u);  // torchvision: 62 parameters, 60 buffers
  EXPECT_EQ(shapes["conv1.weight"], (std::vector<int64_t>{64, 3, 7, 7}));
  EXPECT_EQ(shapes["bn1.running_var"], (std::vector<int64_t>{64}));
  EXPECT_EQ(shapes["layer1.0.conv1.weight"], (std::vector<int64_t>{64, 64, 3, 3}));
  EXPECT_EQ(shapes["layer2.0.downsample.0.weight"], (std::vector<int64_t>{128, 64, 1, 1}));
  EXPECT_EQ(shapes["layer2.0.downsample.1.num_batches_tracked"], (std::vector<int64_t>{}));
  EXPECT_EQ(shapes["layer4.1.bn2.bias"], (std::vector<int64_t>{512}));
  EXPECT_EQ(shapes["fc.weight"], (std::vector<int64_t>{1000, 512}));
  EXPECT_EQ(shapes.count("layer1.0.downsample.0.weight"), 0u);
  const torch::Tensor y = net->forward(torch::randn({1, 3, 64, 64}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 1000}));
}

TEST(ResNet20, HasCifarShapesAndParameterCount) {
  auto net = make_network(options_for(Architecture::kResNet20, 10, 3));
  // Oracle: stem 3x3 conv + BN, 9 blocks of two 3x3 convs + BNs, 1x1 conv + BN
  // shortcuts into stages 2 and 3, linear head.
  auto conv = [](int64_t in, int64_t out, int64_t k) { return in * out * k * k; };
  int64_t expected = conv(3, 16, 3) + 2 * 16;
  const int64_t planes[] = {16, 32, 64};
  int64_t in = 16;
  for (int64_t p : planes) {
    for (int b = 0; b < 3; ++b) {
      expected += conv(in, p, 3) + conv(p, p, 3) + 4 * p;
      if (in != p) expected += conv(in, p, 1) + 2 * p;
      in = p;
    }
  }
  expected += 64 * 10 + 10;
  EXPECT_EQ(count_parameters(*net), expected);
  EXPECT_NEAR(expected / 1e6, 0.27, 0.005);
  EXPECT_EQ(net->forward(torch::randn({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 10}));
}

TEST(SmallResNet, TakesFashionMnistShapedInput) {
  ModelOptions o;  // small-resnet, 1 channel, 10 classes, width 16
  auto net = make_network(o);
  // stem 144 + 32; layer1 (16->16, /2) 2*2304 + 64 + shortcut 256 + 32; layer2 (16->32)
  // 4608 + 9216 + 128 + 512 + 64; layer3 (32->64) 18432 + 36864 + 256 + 2048 + 128; fc 650.
  EXPECT_EQ(count_parameters(*net), 78042);
  EXPECT_EQ(net->forward(torch::randn({3, 1, 28, 28})).sizes(), (std::vector<int64_t>{3, 10}));
  o.width = 8;
  o.num_classes = 5;
  EXPECT_EQ(make_network(o)->forward(torch::randn({1, 1, 28, 28})).sizes(),
            (std::vector<int64_t>{1, 5}));
  EXPECT_THROW(net->forward(torch::randn({1, 3, 28, 28})), ctmq::Error);
}

std::map<std::string, quant::BitDepths> layer_bits(NetworkImpl& net) {
  std::map<std::string, quant::BitDepths> bits;
  for (const auto& m : net.named_modules("", false)) {
    if (auto* layer = dynamic_cast<quant::QuantizedLayer*>(m.value().get())) {
      bits[m.key()] = layer->bit_depths();
    }
  }
  return bits;
}

TEST(Network, SetBitDepthsKeepsEdgeLayersAtEdgeBits) {
  ModelOptions o;
  auto net = make_network(o);
  net->set_bit_depths({2, 3});
  EXPECT_EQ(net->bit_depths(), (quant::BitDepths{2, 3}));
  auto bits = layer_bits(*net);
  EXPECT_EQ(bits.size(), 11u);  // conv1, 6 block convs, 3 shortcuts, fc
  EXPECT_EQ(bits["conv1"], quant::BitDepths{});
  EXPECT_EQ(bits["fc"], quant::BitDepths{});
  EXPECT_EQ(bits["layer2.0.downsample.0"], quant::BitDepths{});
  EXPECT_EQ(bits["layer1.0.conv1"], (quant::BitDepths{2, 3}));
  EXPECT_EQ(bits["layer3.0.conv2"], (quant::BitDepths{2, 3}));

  o.quant.edge_layer_bits = 8;
  auto net8 = make_network(o);
  net8->set_bit_depths({1, 1});
  bits = layer_bits(*net8);
  EXPECT_EQ(bits["conv1"], (quant::BitDepths{8, 32}));
  EXPECT_EQ(bits["layer3.0.downsample.0"], (quant::BitDepths{8, 32}));
  EXPECT_EQ(bits["layer1.0.conv2"], (quant::BitDepths{1, 1}));
  net8->set_bit_depths({});
  for (const auto& [name, b] : layer_bits(*net8)) EXPECT_TRUE(b.full_precision()) << name;

  EXPECT_THROW(net->set_bit_depths({0, 1}), ctmq::Error);
  EXPECT_THROW(net->set_bit_depths({4, 9}), ctmq::Error);
}

TEST(BasicBlock, FormsAreTorchvisionAtFullPrecisionAndBiRealWhenQuantized) {
  torch::manual_seed(5);
  BasicBlock block(4, 8, 2, quant::QuantOptions{}, Block::kTorchvision);
  block->eval();  // BatchNorm with running statistics: a fixed affine map
  {
    torch::NoGradGuard no_grad;
    for (auto& b : block->buffers()) {
      if (b.dtype() == torch::kFloat32) b.uniform_(0.5, 1.5);
    }
  }
  const torch::Tensor x = torch::randn({2, 4, 6, 6});
  auto bn = [](const BatchNorm2dImpl& m, const torch::Tensor& t) {
    return torch::batch_norm(t, m.weight, m.bias, m.running_mean, m.running_var, false, 0.1, 1e-5,
                             false);
  };
  const auto down_bn = std::dynamic_pointer_cast<BatchNorm2dImpl>(block->downsample->ptr(1));
  ASSERT_TRUE(down_bn);
  const torch::Tensor down_w = block->downsample->ptr(0)->named_parameters()["weight"];
  const torch::Tensor shortcut = bn(*down_bn, torch::conv2d(x, down_w, {}, 2));
  // Full precision: torchvision's BasicBlock.
  torch::Tensor h = torch::relu(bn(*block->bn1, torch::conv2d(x, block->conv1->weight, {}, 2, 1)));
  torch::Tensor expected =
      torch::relu(bn(*block->bn2, torch::conv2d(h, block->conv2->weight, {}, 1, 1)) + shortcut);
  EXPECT_LT((block->forward(x) - expected).abs().max().item<double>(), 1e-5);
  // Quantized: a real-valued shortcut around each quantized conv.
  block->conv1->set_bit_depths({1, 1});
  block->conv2->set_bit_depths({1, 1});
  const torch::Tensor mid =
      bn(*block->bn1, torch::conv2d(quant::signed_activation(x, 1),
                                    quant::binary_weight(block->conv1->weight), {}, 2, 1)) +
      shortcut;
  expected = bn(*block->bn2, torch::conv2d(quant::signed_activation(mid, 1),
                                           quant::binary_weight(block->conv2->weight), {}, 1, 1)) +
             mid;
  EXPECT_LT((block->forward(x) - expected).abs().max().item<double>(), 1e-4);
}

TEST(BasicBlock, BiRealIsOneGraphWithHardtanhAtFullPrecision) {
  torch::manual_seed(6);
  BasicBlock block(4, 4, 1, quant::QuantOptions{});  // Block::kBiReal, identity shortcut
  block->eval();
  const torch::Tensor x = torch::randn({2, 4, 5, 5}) * 2;
  auto bn = [](const BatchNorm2dImpl& m, const torch::Tensor& t) {
    return torch::batch_norm(t, m.weight, m.bias, m.running_mean, m.running_var, false, 0.1, 1e-5,
                             false);
  };
  auto expected_at = [&](int k) {
    auto act = [k](const torch::Tensor& t) {
      return k == 32 ? torch::clamp(t, -1, 1) : quant::signed_activation(t, k);
    };
    auto w = [k](const torch::Tensor& t) {
      return k == 32 ? t : quant::dorefa_weight(t, k, quant::Granularity::kPerTensor);
    };
    const torch::Tensor mid =
        bn(*block->bn1, torch::conv2d(act(x), w(block->conv1->weight), {}, 1, 1)) + x;
    return bn(*block->bn2, torch::conv2d(act(mid), w(block->conv2->weight), {}, 1, 1)) + mid;
  };
  EXPECT_LT((block->forward(x) - expected_at(32)).abs().max().item<double>(), 1e-5);
  block->conv1->set_bit_depths({4, 4});
  block->conv2->set_bit_depths({4, 4});
  EXPECT_LT((block->forward(x) - expected_at(4)).abs().max().item<double>(), 1e-4);
  // The network: no stem ReLU at full precision, same graph as quantized.
  ModelOptions options;
  options.width = 4;
  auto net = make_network(options);
  EXPECT_EQ(net->options().block, Block::kBiReal);
  EXPECT_EQ(parse_block("torchvision"), Block::kTorchvision);
  EXPECT_EQ(block_name(parse_block("bi-real")), "bi-real");
  EXPECT_THROW(parse_block("relu"), ctmq::Error);
}

}  // namespace
}  // namespace ctmq::model
