#include "ctmq/eval/evaluator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "ctmq/common/error.h"
#include "ctmq/dist/single_process_communicator.h"
#include "ctmq/model/batch_norm.h"
#include "ctmq/quant/quant_conv.h"
#include "data/data_test_util.h"
#include "test_support.h"

namespace ctmq::eval {
namespace {

// 300 real Fashion-MNIST images as shards, and a seeded small ResNet.
class EvaluatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data::test::write_fashion_idx(dir_.path(), 300);
    data::build_shards(data::test::idx_build(dir_.path(), dir_.path() + "/shards", 128));
    dataset_ = std::make_unique<data::ShardDataset>(dir_.path() + "/shards/manifest.json");
    torch::manual_seed(7);
    model::ModelOptions options;
    options.width = 8;
    net_ = model::make_network(options);
  }

  testing::TempDir dir_;
  std::unique_ptr<data::ShardDataset> dataset_;
  std::shared_ptr<model::NetworkImpl> net_;
  dist::SingleProcessCommunicator comm_;
};

TEST_F(EvaluatorTest, MatchesAnOracleOnRealData) {
  for (quant::BitDepths bits : {quant::BitDepths{32, 32}, quant::BitDepths{2, 2}}) {
    net_->set_bit_depths(bits);
    EvalOptions options;
    options.batch_per_rank = 64;  // 250 = 3 full batches + 58: exercises the last partial batch
    options.limit = 250;
    EvalResult r = evaluate(*net_, *dataset_, options, comm_);

    // Oracle: one forward pass over all 250 samples, counted by hand.
    std::vector<int64_t> all(250);
    for (int64_t i = 0; i < 250; ++i) all[i] = i;
    data::Batch b = dataset_->get_batch(all);
    torch::NoGradGuard no_grad;
    net_->eval();
    torch::Tensor logits = net_->forward(b.images).to(torch::kFloat64);
    torch::Tensor log_p = torch::log_softmax(logits, 1);
    double loss = 0;
    int64_t top1 = 0, top5 = 0;
    std::vector<std::vector<int64_t>> confusion(10, std::vector<int64_t>(10, 0));
    for (int64_t i = 0; i < 250; ++i) {
      const int64_t label = b.labels[i].item<int64_t>();
      loss -= log_p[i][label].item<double>();
      const double own = logits[i][label].item<double>();
      int64_t higher = (logits[i] > own).sum().item<int64_t>();
      top1 += higher == 0;
      top5 += higher < 5;
      confusion[label][logits[i].argmax().item<int64_t>()] += 1;
    }
    EXPECT_EQ(r.samples, 250);
    EXPECT_NEAR(r.loss, loss / 250, 1e-5) << bits.tag();
    EXPECT_DOUBLE_EQ(r.top1, 100.0 * top1 / 250) << bits.tag();
    ASSERT_TRUE(r.top5.has_value());
    EXPECT_DOUBLE_EQ(*r.top5, 100.0 * top5 / 250) << bits.tag();
    ASSERT_EQ(r.confusion.sizes(), (std::vector<int64_t>{10, 10}));
    ASSERT_EQ(r.per_class_accuracy.size(), 10u);
    for (int t = 0; t < 10; ++t) {
      int64_t row = 0;
      for (int p = 0; p < 10; ++p) {
        EXPECT_EQ(r.confusion[t][p].item<int64_t>(), confusion[t][p]) << t << "," << p;
        row += confusion[t][p];
      }
      if (row > 0) EXPECT_DOUBLE_EQ(r.per_class_accuracy[t], 100.0 * confusion[t][t] / row);
    }
  }
}

TEST_F(EvaluatorTest, RefusesANetworkWithAnotherClassCount) {
  model::ModelOptions options;
  options.num_classes = 7;
  auto other = model::make_network(options);
  try {
    evaluate(*other, *dataset_, EvalOptions(), comm_);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("7 classes"), std::string::npos) << e.what();
  }
}

TEST_F(EvaluatorTest, BatchNormRecalibrationAveragesTrainingBatchStatistics) {
  auto* bn1 = dynamic_cast<model::BatchNorm2dImpl*>(net_->named_modules()["bn1"].get());
  auto* conv1 = dynamic_cast<quant::QuantConv2dImpl*>(net_->named_modules()["conv1"].get());
  ASSERT_NE(bn1, nullptr);
  ASSERT_NE(conv1, nullptr);
  bn1->running_mean.fill_(42.0);  // stale statistics must be replaced, not blended
  const auto momentum = bn1->options.momentum();

  BatchNormRecalibration options;
  options.batches = 2;
  options.batch = 32;
  options.limit = 64;  // two batches of 32 cover the first 64 samples once
  EXPECT_EQ(recalibrate_batch_norm(*net_, *dataset_, options, comm_), 2);
  EXPECT_FALSE(net_->is_training());
  EXPECT_EQ(bn1->options.momentum(), momentum);

  // bn1 sees conv1(x) whatever the batch statistics: its running mean is the
  // per-channel mean of conv1 over the 64 samples (two equal halves).
  std::vector<int64_t> first(64);
  for (int64_t i = 0; i < 64; ++i) first[i] = i;
  torch::NoGradGuard no_grad;
  torch::Tensor features = conv1->forward(dataset_->get_batch(first).images);
  torch::Tensor expected = features.mean({0, 2, 3});
  EXPECT_TRUE(torch::allclose(bn1->running_mean, expected, 1e-4, 1e-5))
      << bn1->running_mean << expected;
}

// Regression (issue [7/12] #5): evaluation normalised test images with the
// test manifest's own mean/std. Here the "test set" is the 150 brightest of
// the training images, so its manifest's statistics are shifted well away
// from the training set's; evaluated as trained, every logit must be what
// training saw for the same images.
TEST_F(EvaluatorTest, AShiftedTestManifestIsNormalisedAsTheNetworkWasTrained) {
  const auto all = ctmq::testing::load_fashion_mnist_train(300);
  const torch::Tensor brightness = all.images.to(torch::kFloat32).mean({1, 2, 3});
  const torch::Tensor brightest = brightness.argsort(0, /*descending=*/true).slice(0, 0, 150);
  std::vector<int64_t> picked(brightest.data_ptr<int64_t>(), brightest.data_ptr<int64_t>() + 150);
  testing::TempDir shifted;
  {
    std::ofstream images(shifted.path() + "/images.idx", std::ios::binary);
    data::test::write_big_endian(images, 0x803);
    data::test::write_big_endian(images, 150);
    data::test::write_big_endian(images, 28);
    data::test::write_big_endian(images, 28);
    std::ofstream labels(shifted.path() + "/labels.idx", std::ios::binary);
    data::test::write_big_endian(labels, 0x801);
    data::test::write_big_endian(labels, 150);
    for (int64_t i : picked) {
      const torch::Tensor image = all.images[i].contiguous();
      images.write(reinterpret_cast<const char*>(image.data_ptr<uint8_t>()), 784);
      const char label = static_cast<char>(all.labels[i].item<int64_t>());
      labels.write(&label, 1);
    }
  }
  data::build_shards(data::test::idx_build(shifted.path(), shifted.path() + "/shards", 64));
  data::ShardDataset test(shifted.path() + "/shards/manifest.json");
  ASSERT_GT(test.mean()[0], dataset_->mean()[0] + 0.05) << "the subset is not shifted";

  // The network as the trainer builds it: preprocessing from its training data.
  model::ModelOptions options = net_->options();
  options.preprocessing = {dataset_->mean(), dataset_->std_dev()};
  torch::manual_seed(7);
  auto net = model::make_network(options);
  net->eval();
  torch::NoGradGuard no_grad;
  const data::Batch seen_in_training = dataset_->get_batch(picked);
  const double expected_loss = torch::nn::functional::cross_entropy(
                                   net->forward(seen_in_training.images), seen_in_training.labels)
                                   .item<double>();

  EvalOptions eval_options;
  eval_options.batch_per_rank = 150;
  const EvalResult own_statistics = evaluate(*net, test, eval_options, comm_);
  EXPECT_GT(std::abs(own_statistics.loss - expected_loss), 1e-3)
      << "the shift does not change the loss: the test could not fail";

  ASSERT_TRUE(normalise_as_trained(*net, test, "test network"));
  EXPECT_EQ(test.mean(), dataset_->mean());
  const EvalResult as_trained = evaluate(*net, test, eval_options, comm_);
  EXPECT_NEAR(as_trained.loss, expected_loss, 1e-5 * std::max(1.0, expected_loss));
  EXPECT_TRUE(torch::equal(test.get_batch({0, 1, 2}).images,
                           dataset_->get_batch({picked[0], picked[1], picked[2]}).images));
}

TEST_F(EvaluatorTest, ANetworkWithoutRecordedPreprocessingLeavesTheDataAsItIs) {
  data::ShardDataset test(dir_.path() + "/shards/manifest.json");
  EXPECT_FALSE(normalise_as_trained(*net_, test, "old network"));
  EXPECT_EQ(test.mean(), dataset_->mean());
}

}  // namespace
}  // namespace ctmq::eval
