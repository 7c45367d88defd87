// QuantConv2d and QuantLinear: torch.nn naming, full precision equal to torch's
// modules, quantized forward equal to the quantizer functions, live bit-depth
// switches and LSQ state.
#include "ctmq/quant/quant_conv.h"

#include <gtest/gtest.h>

#include "ctmq/common/error.h"
#include "ctmq/quant/quant_linear.h"
#include "ctmq/quant/quantizers.h"

namespace ctmq::quant {
namespace {

std::vector<std::string> parameter_names(const torch::nn::Module& m) {
  std::vector<std::string> names;
  for (const auto& p : m.named_parameters()) names.push_back(p.key());
  return names;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

TEST(QuantConv2d, FullPrecisionEqualsTorchConv2d) {
  torch::manual_seed(1);
  QuantConv2d conv(QuantConv2dOptions(3, 8, 3).stride(2).padding(1).bias(true));
  torch::nn::Conv2d ref(torch::nn::Conv2dOptions(3, 8, 3).stride(2).padding(1).bias(true));
  EXPECT_EQ(parameter_names(*conv), parameter_names(*ref));
  {
    torch::NoGradGuard no_grad;
    ref->weight.copy_(conv->weight);
    ref->bias.copy_(conv->bias);
  }
  const torch::Tensor x = torch::randn({2, 3, 9, 9});
  EXPECT_TRUE(torch::equal(conv->forward(x), ref->forward(x)));
}

TEST(QuantConv2d, QuantizedForwardUsesQuantizedWeightAndInput) {
  torch::manual_seed(2);
  QuantConv2d conv(QuantConv2dOptions(4, 6, 3).padding(1));
  const torch::Tensor x = torch::randn({2, 4, 5, 5});
  for (int bits : {1, 2, 4}) {
    conv->set_bit_depths({bits, bits});
    const torch::Tensor w =
        bits == 1 ? binary_weight(conv->weight) : dorefa_weight(conv->weight, bits, {});
    const torch::Tensor expected =
        torch::conv2d(signed_activation(x, bits), w, {}, /*stride=*/1, /*padding=*/1);
    EXPECT_LT(max_diff(conv->forward(x), expected), 1e-5) << bits;
    EXPECT_LT(max_diff(conv->quantized_weight(), w), 1e-7);
  }
  conv->set_bit_depths({});
  EXPECT_TRUE(torch::equal(conv->quantized_weight(), conv->weight));
}

TEST(QuantConv2d, EdgeLayerNeverQuantizesItsInput) {
  torch::manual_seed(3);
  QuantConv2d conv(QuantConv2dOptions(2, 4, 1).edge_layer(true));
  conv->set_bit_depths({8, 1});
  const torch::Tensor x = torch::randn({1, 2, 4, 4}) * 3;
  const torch::Tensor expected = torch::conv2d(x, dorefa_weight(conv->weight, 8, {}));
  EXPECT_LT(max_diff(conv->forward(x), expected), 1e-5);
}

TEST(QuantConv2d, LsqStepsAreRegisteredAndReinitialisedPerBitDepth) {
  QuantOptions q;
  q.weight = WeightQuantizer::kLsq;
  q.activation = ActivationQuantizer::kLsq;
  torch::manual_seed(4);
  QuantConv2d conv(QuantConv2dOptions(3, 5, 3).quant(q));
  EXPECT_EQ(parameter_names(*conv),
            (std::vector<std::string>{"weight", "weight_step", "input_step"}));
  conv->set_bit_depths({4, 4});
  const double mean_abs = conv->weight.abs().mean().item<double>();
  EXPECT_NEAR(conv->named_parameters()["weight_step"].item<double>(), 2 * mean_abs / std::sqrt(7.0),
              1e-6);
  EXPECT_EQ(conv->named_parameters()["input_step"].item<double>(), 0.0);

  const torch::Tensor x = torch::randn({4, 3, 6, 6});
  conv->train();
  const torch::Tensor y = conv->forward(x);
  const double input_step = conv->named_parameters()["input_step"].item<double>();
  EXPECT_NEAR(input_step, 2 * x.abs().mean().item<double>() / std::sqrt(7.0), 1e-6);
  y.sum().backward();
  EXPECT_NE(conv->named_parameters()["weight_step"].grad().item<double>(), 0.0);

  // Switching to 2 bits re-initialises both steps for the new k.
  conv->set_bit_depths({2, 2});
  EXPECT_NEAR(conv->named_parameters()["weight_step"].item<double>(), 2 * mean_abs / 1.0, 1e-6);
  EXPECT_EQ(conv->named_parameters()["input_step"].item<double>(), 0.0);

  // Evaluating before any training batch is a user error, not a crash.
  conv->eval();
  EXPECT_THROW(conv->forward(x), ctmq::Error);
}

TEST(QuantConv2d, LsqInputStepUsesTheGlobalBatchWithARankSum) {
  QuantOptions q;
  q.activation = ActivationQuantizer::kLsq;
  QuantConv2d conv(QuantConv2dOptions(2, 3, 3).quant(q));
  conv->set_bit_depths({4, 4});
  torch::manual_seed(6);
  const torch::Tensor mine = torch::randn({2, 2, 5, 5});
  const torch::Tensor other = torch::randn({2, 2, 5, 5}) * 3;  // a second rank's half
  int calls = 0;
  conv->set_rank_sum([&](std::vector<torch::Tensor>& t) {
    ++calls;
    t[0][0] += other.abs().sum().to(torch::kDouble);
    t[0][1] += static_cast<double>(other.numel());
  });
  conv->train();
  conv->forward(mine);
  EXPECT_EQ(calls, 1);
  const double expected =
      2 * torch::cat({mine, other}).abs().mean().item<double>() / std::sqrt(7.0);
  EXPECT_NEAR(conv->named_parameters()["input_step"].item<double>(), expected, 1e-6);
  EXPECT_GT(std::fabs(expected - 2 * mine.abs().mean().item<double>() / std::sqrt(7.0)), 0.1);
  conv->forward(mine);
  EXPECT_EQ(calls, 1);  // only the initialisation communicates
}

TEST(QuantConv2d, CloneKeepsBitDepthsAndValues) {
  QuantConv2d conv(QuantConv2dOptions(2, 3, 3));
  conv->set_bit_depths({2, 3});
  auto copy = std::dynamic_pointer_cast<QuantConv2dImpl>(conv->clone());
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->bit_depths(), (BitDepths{2, 3}));
  EXPECT_TRUE(torch::equal(copy->weight, conv->weight));
  const torch::Tensor x = torch::randn({1, 2, 5, 5});
  EXPECT_TRUE(torch::equal(copy->forward(x), conv->forward(x)));
}

TEST(QuantLinear, FullPrecisionEqualsTorchLinearAndQuantizesAtLowBits) {
  torch::manual_seed(5);
  QuantLinear fc(10, 4);
  torch::nn::Linear ref(10, 4);
  EXPECT_EQ(parameter_names(*fc), parameter_names(*ref));
  {
    torch::NoGradGuard no_grad;
    ref->weight.copy_(fc->weight);
    ref->bias.copy_(fc->bias);
  }
  const torch::Tensor x = torch::randn({3, 10});
  EXPECT_TRUE(torch::equal(fc->forward(x), ref->forward(x)));
  fc->set_bit_depths({3, 2});
  const torch::Tensor expected =
      torch::linear(signed_activation(x, 2), dorefa_weight(fc->weight, 3, {}), fc->bias);
  EXPECT_LT(max_diff(fc->forward(x), expected), 1e-5);
}

TEST(QuantLinear, RejectsInvalidBitDepths) {
  QuantLinear fc(4, 2);
  EXPECT_THROW(fc->set_bit_depths({0, 4}), ctmq::Error);
  EXPECT_THROW(fc->set_bit_depths({4, 12}), ctmq::Error);
}

}  // namespace
}  // namespace ctmq::quant
