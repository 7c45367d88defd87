#include "ctmq/eval/quant_report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ctmq/common/error.h"

namespace ctmq::eval {
namespace {

std::shared_ptr<model::NetworkImpl> seeded_net(uint64_t seed) {
  torch::manual_seed(seed);
  model::ModelOptions options;
  options.width = 8;
  return model::make_network(options);
}

TEST(QuantReportTest, BinaryLayersMatchTheXnorOracleAndFlipsAreCounted) {
  auto net = seeded_net(3);
  auto init = seeded_net(3);
  net->set_bit_depths({1, 1});
  // Flip the sign of the first 10 weights of one layer relative to init.
  torch::NoGradGuard no_grad;
  auto params = net->named_parameters();
  torch::Tensor w = params["layer1.0.conv1.weight"];
  w.view(-1).slice(0, 0, 10).neg_();
  // Zero one weight of the (full-precision) first conv: sign(0) differs from a
  // non-zero sign.
  params["conv1.weight"].view(-1)[20] = 0;

  QuantReport report = make_quant_report(*net, "c1-w1a1", init.get(), std::string("c1-w2a2"));
  EXPECT_EQ(report.bits, (quant::BitDepths{1, 1}));
  ASSERT_FALSE(report.layers.empty());
  bool saw_binary = false, saw_edge = false;
  for (const LayerQuantReport& layer : report.layers) {
    torch::Tensor latent = net->named_parameters()[layer.name].to(torch::kFloat64);
    EXPECT_EQ(layer.numel, latent.numel());
    if (layer.bits == 32) {
      saw_edge = true;
      EXPECT_EQ(layer.relative_error, 0.0);
    } else {
      saw_binary = true;
      EXPECT_EQ(layer.bits, 1);
      // method.md: W_b = alpha * sign(W), alpha = mean |W| per output channel.
      torch::Tensor alpha = latent.abs().flatten(1).mean(1).view({-1, 1, 1, 1});
      torch::Tensor binary = alpha * torch::sign(latent);
      const double expected = ((binary - latent).norm() / latent.norm()).item<double>();
      EXPECT_NEAR(layer.relative_error, expected, 1e-5) << layer.name;
    }
    ASSERT_TRUE(layer.sign_flip_fraction.has_value());
    const double flips = layer.name == "layer1.0.conv1.weight" ? 10.0 / layer.numel
                         : layer.name == "conv1.weight"        ? 1.0 / layer.numel
                                                               : 0.0;
    EXPECT_DOUBLE_EQ(*layer.sign_flip_fraction, flips) << layer.name;
  }
  EXPECT_TRUE(saw_binary);
  EXPECT_TRUE(saw_edge);  // first conv and last linear stay full precision

  auto j = nlohmann::json::parse(quant_report_json(report));
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["init_stage"], "c1-w2a2");
  EXPECT_EQ(j["layers"].size(), report.layers.size());
  EXPECT_EQ(j["layers"][0]["name"], report.layers[0].name);
}

TEST(QuantReportTest, WithoutInitSignFlipsAreNull) {
  auto net = seeded_net(1);
  net->set_bit_depths({4, 4});
  QuantReport report = make_quant_report(*net, "c0-fp", nullptr, std::nullopt);
  for (const auto& layer : report.layers) {
    EXPECT_FALSE(layer.sign_flip_fraction.has_value());
    if (layer.bits == 4) EXPECT_GT(layer.relative_error, 0.0);
  }
  auto j = nlohmann::json::parse(quant_report_json(report));
  EXPECT_TRUE(j["init_stage"].is_null());
  EXPECT_TRUE(j["layers"][0]["sign_flip_fraction"].is_null());
}

TEST(QuantReportTest, AnotherArchitectureIsAClearError) {
  auto net = seeded_net(1);
  torch::manual_seed(1);
  model::ModelOptions options;
  options.width = 4;
  auto narrow = model::make_network(options);
  EXPECT_THROW(make_quant_report(*net, "c1-w4a4", narrow.get(), std::string("c0-fp")), Error);
}

}  // namespace
}  // namespace ctmq::eval
