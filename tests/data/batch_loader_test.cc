// BatchLoader on real Fashion-MNIST batches (shards built from the IDX files,
// crop-flip augmentation): batches arrive in step order and bit-identical to
// the serial loop for any worker count, a producer's exception surfaces at its
// own step, destruction mid-run joins promptly, and workers hide a producer
// that is faster than the consumer.
#include "ctmq/data/batch_loader.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "ctmq/common/error.h"
#include "ctmq/data/augment.h"
#include "ctmq/data/distributed_sampler.h"
#include "data/data_test_util.h"

namespace ctmq::data {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kSamples = 512;
constexpr int64_t kBatch = 32;  // 16 steps per epoch

void sleep_ms(double ms) {
  std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
}

class BatchLoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    temp_ = new ctmq::testing::TempDir();
    std::filesystem::create_directories(temp_->path() + "/in");
    test::write_fashion_idx(temp_->path() + "/in", kSamples);
    build_shards(test::idx_build(temp_->path() + "/in", temp_->path() + "/out", 100));
  }
  static void TearDownTestSuite() {
    delete temp_;
    temp_ = nullptr;
  }

  BatchLoaderTest()
      : dataset_(temp_->path() + "/out/manifest.json"),
        sampler_({kSamples, kBatch, 1, 0, /*seed=*/5, /*shuffle=*/true}),
        augment_{Augment::kCropFlip, 2, 5},
        black_(dataset_.normalized_black()) {}

  // The trainer's producer: the batch of a global step, a function of the step alone.
  Batch batch_of(int64_t global_step) const {
    const int64_t epoch = global_step / sampler_.steps_per_epoch();
    const std::vector<int64_t> indices =
        sampler_.indices(epoch, global_step % sampler_.steps_per_epoch());
    Batch batch = dataset_.get_batch(indices);
    batch.images = augment_batch(batch.images, indices, epoch, black_, augment_);
    return batch;
  }

  static ctmq::testing::TempDir* temp_;
  ShardDataset dataset_;
  DistributedSampler sampler_;
  AugmentOptions augment_;
  torch::Tensor black_;
};
ctmq::testing::TempDir* BatchLoaderTest::temp_ = nullptr;

TEST_F(BatchLoaderTest, DeliversInStepOrderBitIdenticalToTheSerialLoop) {
  // Two epochs, started mid-epoch as a resumed stage is.
  const int64_t first = 5, last = 2 * sampler_.steps_per_epoch();
  std::vector<Batch> serial;
  for (int64_t s = first; s < last; ++s) serial.push_back(batch_of(s));
  // Distinct steps give distinct batches (otherwise order would be untested).
  ASSERT_FALSE(torch::equal(serial[0].images, serial[1].images));
  for (int workers : {0, 1, 3}) {
    SCOPED_TRACE("workers " + std::to_string(workers));
    // Jitter: later steps are often faster, so workers finish out of order.
    BatchLoader loader(
        [&](int64_t s) {
          sleep_ms(static_cast<double>((s * 7) % 5));
          return batch_of(s);
        },
        {first, last, workers, 0, false});
    for (int64_t s = first; s < last; ++s) {
      EXPECT_EQ(loader.next_step(), s);
      Batch b = loader.next();
      const Batch& want = serial[s - first];
      ASSERT_TRUE(torch::equal(b.images, want.images)) << "step " << s;
      ASSERT_TRUE(torch::equal(b.labels, want.labels)) << "step " << s;
    }
    EXPECT_THROW(loader.next(), Error);  // past the last step
  }
}

TEST_F(BatchLoaderTest, ProducerExceptionIsRethrownAtItsOwnStep) {
  constexpr int64_t kBad = 7;
  for (int workers : {0, 1, 3}) {
    SCOPED_TRACE("workers " + std::to_string(workers));
    BatchLoader loader(
        [&](int64_t s) {
          if (s == kBad) CTMQ_FAIL("shard 3, record 17: checksum mismatch at step " << s);
          return batch_of(s);
        },
        {0, 12, workers, 4, false});
    for (int64_t s = 0; s < kBad; ++s) {
      // Workers have met the bad step by now; it must not surface early.
      if (workers > 0 && s == kBad - 2) sleep_ms(30);
      ASSERT_NO_THROW(loader.next()) << "step " << s;
    }
    try {
      loader.next();
      ADD_FAILURE() << "step " << kBad << " did not throw";
    } catch (const Error& e) {
      EXPECT_STREQ(e.what(), "shard 3, record 17: checksum mismatch at step 7");
    }
    // The steps after it are still delivered, in order.
    Batch after = loader.next();
    EXPECT_TRUE(torch::equal(after.labels, batch_of(kBad + 1).labels));
  }
}

TEST_F(BatchLoaderTest, DestructionMidRunJoinsPromptlyAndProducesNoMoreThanThePrefetch) {
  std::atomic<int> calls{0};
  const auto start = Clock::now();
  {
    BatchLoader loader(
        [&](int64_t s) {
          ++calls;
          sleep_ms(5);
          return batch_of(s % 32);
        },
        {0, 100000, 3, 6, false});
    loader.next();
    loader.next();
    sleep_ms(50);  // let the workers fill the window
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_LT(seconds, 5.0);
  // 2 taken + at most 6 ahead.
  EXPECT_LE(calls.load(), 8);
  EXPECT_GE(calls.load(), 2);

  // Destroyed while the consumer never took anything, and with no steps at all.
  {
    BatchLoader idle([&](int64_t s) { return batch_of(s); }, {0, 50, 2, 0, false});
  }
  {
    BatchLoader empty([&](int64_t s) { return batch_of(s); }, {3, 3, 2, 0, false});
  }
}

TEST_F(BatchLoaderTest, WorkersHideAProducerFasterThanTheConsumer) {
  // Consumer 20 ms per step (the training step), producer 2 ms plus get_batch.
  constexpr int64_t kSteps = 15;
  auto waited = [&](int workers) {
    BatchLoader loader(
        [&](int64_t s) {
          sleep_ms(2);
          return batch_of(s);
        },
        {0, kSteps, workers, 0, false});
    for (int64_t s = 0; s < kSteps; ++s) {
      loader.next();
      sleep_ms(20);
    }
    return loader.waited_s();
  };
  const double serial = waited(0);
  const double one_worker = waited(1);
  EXPECT_GE(serial, kSteps * 0.002);  // at least the producer's sleeps
  EXPECT_LT(one_worker, 0.5 * serial) << "serial " << serial << " s, 1 worker " << one_worker;
}

TEST_F(BatchLoaderTest, WorkersRunLibTorchOnOneIntraOpThreadAndLeaveTheCallersCount) {
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  std::atomic<int> worker_threads{-1};
  {
    BatchLoader loader(
        [&](int64_t s) {
          Batch batch = batch_of(s);  // LibTorch has initialised this thread's count
          worker_threads = at::get_num_threads();
          return batch;
        },
        {0, 2, 1, 0, false});
    loader.next();
    loader.next();
  }
  EXPECT_EQ(at::get_num_threads(), 2);
  at::set_num_threads(before);
#if AT_PARALLEL_OPENMP
  EXPECT_EQ(worker_threads.load(), 1);
#else
  EXPECT_GE(worker_threads.load(), 1);
#endif
}

TEST_F(BatchLoaderTest, BadOptionsAreRefused) {
  auto produce = [&](int64_t s) { return batch_of(s); };
  EXPECT_THROW(BatchLoader(produce, {0, 4, -1, 0, false}), Error);
  EXPECT_THROW(BatchLoader(produce, {5, 4, 1, 0, false}), Error);
  EXPECT_THROW(BatchLoader(produce, {0, 4, 3, 2, false}), Error);  // prefetch < workers
  if (!torch::cuda::is_available()) EXPECT_THROW(BatchLoader(produce, {0, 4, 1, 0, true}), Error);
}

}  // namespace
}  // namespace ctmq::data
