// ctmq::eval on 2 ranks gives what one process gives.
#include <gtest/gtest.h>

#include "ctmq/dist/single_process_communicator.h"
#include "ctmq/eval/evaluator.h"
#include "ctmq/model/batch_norm.h"
#include "data/data_test_util.h"
#include "mpi/mpi_test_main.h"
#include "test_support.h"

namespace ctmq::eval {
namespace {

class MpiEvalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data::test::write_fashion_idx(dir_.path(), 200);
    data::build_shards(data::test::idx_build(dir_.path(), dir_.path() + "/shards", 64));
    dataset_ = std::make_unique<data::ShardDataset>(dir_.path() + "/shards/manifest.json");
  }
  std::shared_ptr<model::NetworkImpl> net() {
    torch::manual_seed(11);  // the same weights on every rank
    model::ModelOptions options;
    options.width = 8;
    auto n = model::make_network(options);
    n->set_bit_depths({2, 2});
    return n;
  }
  testing::TempDir dir_;
  std::unique_ptr<data::ShardDataset> dataset_;
};

TEST_F(MpiEvalTest, TwoRanksEqualOneProcess) {
  auto& comm = testing::mpi_context();
  ASSERT_EQ(comm.size(), 2);
  EvalOptions options;
  options.batch_per_rank = 32;
  options.limit = 199;  // odd: the ranks get 99 and 100 samples
  auto model = net();
  EvalResult parallel = evaluate(*model, *dataset_, options, comm);
  dist::SingleProcessCommunicator alone;
  EvalResult serial = evaluate(*model, *dataset_, options, alone);
  EXPECT_EQ(parallel.samples, 199);
  EXPECT_DOUBLE_EQ(parallel.top1, serial.top1);
  EXPECT_DOUBLE_EQ(*parallel.top5, *serial.top5);
  EXPECT_NEAR(parallel.loss, serial.loss, 1e-9);
  EXPECT_TRUE(parallel.confusion.equal(serial.confusion));
}

TEST_F(MpiEvalTest, BatchNormRecalibrationIsSynchronised) {
  auto& comm = testing::mpi_context();
  BatchNormRecalibration options;
  options.batches = 3;
  options.batch = 40;
  auto parallel = net();
  recalibrate_batch_norm(*parallel, *dataset_, options, comm);
  auto serial = net();
  dist::SingleProcessCommunicator alone;
  recalibrate_batch_norm(*serial, *dataset_, options, alone);
  auto a = parallel->named_buffers();
  auto b = serial->named_buffers();
  int compared = 0;
  for (const auto& item : a) {
    if (item.key().find("running_") == std::string::npos) continue;
    EXPECT_TRUE(torch::allclose(item.value(), b[item.key()], 1e-4, 1e-5)) << item.key();
    ++compared;
  }
  EXPECT_GT(compared, 4);
}

}  // namespace
}  // namespace ctmq::eval
