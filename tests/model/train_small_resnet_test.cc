// The small ResNet learns real Fashion-MNIST at 32, 4 and 1 bits, and a bit
// depth switch on the live model keeps latent weights and BatchNorm state.
#include <gtest/gtest.h>

#include "ctmq/model/network.h"
#include "ctmq/quant/quantizers.h"
#include "test_support.h"

namespace ctmq::model {
namespace {

constexpr int64_t kImages = 256;
constexpr int64_t kBatch = 64;

struct Data {
  torch::Tensor images;  // normalised float [N, 1, 28, 28]
  torch::Tensor labels;
};

const Data& fashion_mnist() {
  static const Data data = [] {
    const auto raw = ctmq::testing::load_fashion_mnist_train(kImages);
    return Data{(raw.images.to(torch::kFloat32) / 255 - 0.2860) / 0.3530, raw.labels};
  }();
  return data;
}

double dataset_loss(NetworkImpl& net) {
  torch::NoGradGuard no_grad;
  const Data& d = fashion_mnist();
  return torch::cross_entropy_loss(net.forward(d.images), d.labels).item<double>();
}

void train_steps(NetworkImpl& net, int steps, double lr) {
  const Data& d = fashion_mnist();
  net.train();
  torch::optim::Adam adam(net.parameters(), torch::optim::AdamOptions(lr));
  for (int s = 0; s < steps; ++s) {
    const int64_t start = (s * kBatch) % kImages;
    const torch::Tensor x = d.images.slice(0, start, start + kBatch);
    const torch::Tensor y = d.labels.slice(0, start, start + kBatch);
    adam.zero_grad();
    const torch::Tensor loss = torch::cross_entropy_loss(net.forward(x), y);
    ASSERT_TRUE(std::isfinite(loss.item<double>()));
    loss.backward();
    adam.step();
  }
}

ModelOptions small(quant::QuantOptions q = {}) {
  ModelOptions o;
  o.width = 8;
  o.quant = q;
  return o;
}

class TrainSmallResNet : public ::testing::TestWithParam<int> {};

TEST_P(TrainSmallResNet, LossFallsOnFashionMnist) {
  torch::manual_seed(7);
  torch::set_num_threads(1);
  auto net = make_network(small());
  net->set_bit_depths({GetParam(), GetParam()});
  net->train();  // batch statistics, as during training
  const double before = dataset_loss(*net);
  train_steps(*net, 24, 3e-3);
  const double after = dataset_loss(*net);
  EXPECT_LT(after, 0.8 * before) << "bits " << GetParam() << ": " << before << " -> " << after;
  EXPECT_LT(after, 2.0);  // ln(10) = 2.30 is chance level
}

INSTANTIATE_TEST_SUITE_P(Bits, TrainSmallResNet, ::testing::Values(32, 4, 1));

TEST(TrainSmallResNet, SwitchingBitDepthsKeepsWeightsAndBatchNormAndReinitialisesSteps) {
  torch::manual_seed(8);
  torch::set_num_threads(1);
  quant::QuantOptions q;
  q.weight = quant::WeightQuantizer::kLsq;
  q.activation = quant::ActivationQuantizer::kLsq;
  auto net = make_network(small(q));
  net->set_bit_depths({4, 4});
  train_steps(*net, 12, 3e-3);
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : net->named_parameters()) before[p.key()] = p.value().clone();
  for (const auto& b : net->named_buffers()) before[b.key()] = b.value().clone();

  net->set_bit_depths({3, 3});
  int steps = 0;
  for (const auto& p : net->named_parameters()) {
    const std::string& name = p.key();
    const bool is_step = name.find("_step") != std::string::npos;
    if (!is_step) {
      EXPECT_TRUE(torch::equal(p.value(), before[name])) << name;
    } else if (name.find("layer") == 0 && name.find("downsample") == std::string::npos) {
      EXPECT_FALSE(torch::equal(p.value(), before[name])) << name;  // re-initialised for k = 3
      ++steps;
    }
  }
  EXPECT_EQ(steps, 12);  // 6 block convs x (weight_step, input_step)
  for (const auto& b : net->named_buffers()) {
    EXPECT_TRUE(torch::equal(b.value(), before[b.key()])) << b.key();
  }
  net->train();
  const double loss3 = dataset_loss(*net);
  train_steps(*net, 12, 3e-3);
  EXPECT_LT(dataset_loss(*net), loss3);
}

}  // namespace
}  // namespace ctmq::model
