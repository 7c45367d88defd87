// Channels-last and contiguous activations (NetworkImpl::set_memory_format):
// the same function and gradients, and channels-last kept through every layer.
//
// The gradient check is in float64. In float32 the two layouts round
// differently (oneDNN picks other convolution kernels), and where an
// activation lies within that rounding of the clip boundary (hardtanh at full
// precision) its derivative jumps from 1 to 0: one such element in a
// ResNet-20 made float32 gradients 1.5% apart although both were right for
// their own forward values (docs/performance.md). In float64 the layouts
// agree to ~1e-15 and no element lands that close to a boundary.
#include "ctmq/model/memory_format.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "ctmq/common/error.h"
#include "ctmq/model/batch_norm.h"
#include "ctmq/model/network.h"
#include "ctmq/model/resnet.h"

namespace ctmq::model {
namespace {

constexpr auto kChannelsLast = torch::MemoryFormat::ChannelsLast;
constexpr auto kContiguous = torch::MemoryFormat::Contiguous;

struct Result {
  torch::Tensor logits;
  std::vector<torch::Tensor> grads;    // one per parameter, in parameter order
  std::vector<torch::Tensor> buffers;  // BatchNorm running statistics after the step
};

// One training-mode forward and backward of a ResNet-20 (width 8) at `bits`.
Result step(torch::MemoryFormat format, torch::ScalarType dtype, quant::BitDepths bits,
            bool synchronised_bn) {
  ModelOptions o;
  o.architecture = Architecture::kResNet20;
  o.width = 8;
  o.in_channels = 3;
  torch::manual_seed(3);
  auto net = make_network(o);
  net->set_bit_depths(bits);
  net->set_memory_format(format);
  if (synchronised_bn) set_stats_reducer(*net, [](std::vector<torch::Tensor>&) {});
  net->to(dtype);
  net->train();
  torch::manual_seed(4);
  const torch::Tensor images = torch::randn({8, 3, 16, 16}).to(dtype);
  Result r;
  r.logits = net->forward(images);
  r.logits.square().sum().backward();
  for (const auto& p : net->parameters()) r.grads.push_back(p.grad().clone());
  for (const auto& b : net->buffers()) r.buffers.push_back(b.clone());
  return r;
}

double relative_difference(const torch::Tensor& a, const torch::Tensor& b) {
  const double norm = b.norm().item<double>();
  return (a - b).norm().item<double>() / (norm > 0 ? norm : 1.0);
}

// Parameter: (k for WkAk, synchronised BatchNorm or not).
class MemoryFormat : public ::testing::TestWithParam<std::tuple<int, bool>> {
 protected:
  int k() const { return std::get<0>(GetParam()); }
  // The step in channels-last and in contiguous activations, in that order.
  std::pair<Result, Result> both_formats(torch::ScalarType dtype) const {
    const quant::BitDepths bits{k(), k()};
    const bool synchronised_bn = std::get<1>(GetParam());
    return {step(kChannelsLast, dtype, bits, synchronised_bn),
            step(kContiguous, dtype, bits, synchronised_bn)};
  }
};

TEST_P(MemoryFormat, SameOutputsGradientsAndStatisticsInFloat64) {
  const auto [nhwc, nchw] = both_formats(torch::kDouble);
  EXPECT_LT(relative_difference(nhwc.logits, nchw.logits), 1e-12);
  ASSERT_EQ(nhwc.grads.size(), nchw.grads.size());
  for (size_t i = 0; i < nhwc.grads.size(); ++i) {
    EXPECT_LT(relative_difference(nhwc.grads[i], nchw.grads[i]), 1e-10) << "parameter " << i;
  }
  ASSERT_EQ(nhwc.buffers.size(), nchw.buffers.size());
  for (size_t i = 0; i < nhwc.buffers.size(); ++i) {
    EXPECT_LT(relative_difference(nhwc.buffers[i], nchw.buffers[i]), 1e-12) << "buffer " << i;
  }
}

TEST_P(MemoryFormat, Float32OutputsAgreeToRounding) {
  const auto [nhwc, nchw] = both_formats(torch::kFloat);
  // Quantizer rounding can move a few activations by one level, hence 1e-3.
  EXPECT_LT(relative_difference(nhwc.logits, nchw.logits), k() == 32 ? 1e-5 : 1e-3);
}

INSTANTIATE_TEST_SUITE_P(BitDepthsAndBatchNorm, MemoryFormat,
                         ::testing::Combine(::testing::Values(32, 4, 2, 1), ::testing::Bool()));

// Every layer of a block keeps channels-last, so no layer reorders its input
// (the speed of the format depends on it) and the fused quantizer kernels,
// which take any dense layout, see it too.
TEST(MemoryFormatLayout, BlocksKeepChannelsLastAtEveryBitDepth) {
  for (int k : {32, 4, 1}) {
    for (bool synchronised_bn : {false, true}) {
      for (int64_t stride : {1, 2}) {
        BasicBlock block(8, 16, stride, quant::QuantOptions{});
        block->conv1->set_bit_depths({k, k});
        block->conv2->set_bit_depths({k, k});
        if (synchronised_bn) set_stats_reducer(*block, [](std::vector<torch::Tensor>&) {});
        block->train();
        const torch::Tensor x =
            torch::randn({4, 8, 8, 8}).contiguous(kChannelsLast).requires_grad_(true);
        const torch::Tensor y = block->forward(x);
        EXPECT_TRUE(y.is_contiguous(kChannelsLast))
            << "W" << k << "A" << k << (synchronised_bn ? " synchronised" : " native")
            << " BatchNorm, stride " << stride;
        y.sum().backward();
        EXPECT_TRUE(x.grad().is_contiguous(kChannelsLast)) << "input gradient, W" << k << "A" << k;
      }
    }
  }
}

// adaptive_avg_pool2d's backward returns NCHW for a channels-last input;
// gradient_in_format (the network applies it before its pool) hands the ops
// behind it their own layout again.
TEST(MemoryFormatLayout, GradientInFormatUndoesThePoolsNchwGradient) {
  for (bool keep : {false, true}) {
    const torch::Tensor a =
        torch::randn({4, 8, 6, 6}).contiguous(kChannelsLast).requires_grad_(true);
    const torch::Tensor c = a * 2;
    torch::Tensor reached;  // the gradient that reaches c, the op behind b
    c.register_hook([&reached](const torch::Tensor& grad) { reached = grad; });
    torch::Tensor b = c * 3;
    if (keep) b = gradient_in_format(b, kChannelsLast);
    torch::adaptive_avg_pool2d(b, {1, 1}).sum().backward();
    ASSERT_TRUE(reached.defined());
    EXPECT_EQ(reached.is_contiguous(kChannelsLast), keep) << (keep ? "with" : "without");
    EXPECT_TRUE(torch::allclose(a.grad(), torch::full_like(a, 6.0 / 36)));
  }
  const torch::Tensor frozen = torch::randn({2, 3, 4, 4});
  EXPECT_TRUE(gradient_in_format(frozen, kChannelsLast).is_same(frozen));
}

TEST(MemoryFormatLayout, NetworkTakesEitherInputLayoutAndRefusesOtherFormats) {
  ModelOptions o;
  auto net = make_network(o);
  EXPECT_EQ(net->memory_format(), kChannelsLast);  // the default
  net->eval();
  const torch::Tensor images = torch::randn({2, 1, 28, 28});
  const torch::Tensor a = net->forward(images);
  const torch::Tensor b = net->forward(images.contiguous(kChannelsLast));
  EXPECT_TRUE(torch::equal(a, b));
  net->set_memory_format(kContiguous);
  EXPECT_LT(relative_difference(net->forward(images), a), 1e-5);
  EXPECT_THROW(net->set_memory_format(torch::MemoryFormat::Preserve), ctmq::Error);
  EXPECT_THROW(net->set_memory_format(torch::MemoryFormat::ChannelsLast3d), ctmq::Error);
  EXPECT_EQ(parse_enum(kMemoryFormatNames, "contiguous", "--memory-format"), kContiguous);
  EXPECT_THROW(parse_enum(kMemoryFormatNames, "nhwc", "--memory-format"), ctmq::Error);
}

}  // namespace
}  // namespace ctmq::model
