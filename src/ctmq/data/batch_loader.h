// BatchLoader: produces the batches of steps [first_step, last_step) on a pool
// of worker threads, ahead of the trainer, and hands them out strictly in step
// order, so that a training step does not wait for reading, checksums,
// decoding and augmentation (docs/training.md, "Data loading").
//
// Contract: the batch of step s is producer(s), a function of s alone (the
// sampler and the augmentation are deterministic in (seed, epoch, index)), so
// the batches delivered are bit-identical to calling producer(first),
// producer(first + 1), ... on the calling thread, whatever the worker count.
//
// Threads: the producer runs concurrently on up to `workers` threads and must
// be thread-safe (ShardDataset::get_batch, DistributedSampler::indices and
// augment_batch are). Each worker limits its own LibTorch intra-op
// parallelism to 1 thread (OpenMP's per-thread setting) before its first
// call: workers never start an intra-op pool of their own, and the trainer's
// thread keeps torch::get_num_threads(). next() is for one consumer thread.
#pragma once

#include <torch/torch.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "ctmq/data/shard_dataset.h"

namespace ctmq::data {

struct BatchLoaderOptions {
  int64_t first_step = 0;  // global step of the first batch next() returns
  int64_t last_step = 0;   // one past the last; >= first_step
  // Worker threads; 0 = serial: next() calls the producer on the calling
  // thread (no thread is started, nothing is produced ahead).
  int workers = 0;
  // Batches produced ahead at most (being produced or ready, not yet taken);
  // 0 = 2 per worker. At least `workers`. Ignored when workers is 0.
  int prefetch = 0;
  // Workers copy each batch into page-locked (pinned) host memory so that the
  // trainer's .to(cuda, non_blocking=true) is an asynchronous DMA. Needs a
  // CUDA build with a visible device (an Error otherwise); never for CPU
  // training. Ignored when workers is 0.
  bool pin_memory = false;
};

class BatchLoader {
 public:
  using Producer = std::function<Batch(int64_t global_step)>;

  // Starts the workers. Throws ctmq::Error for bad options (negative counts,
  // last < first, pin_memory without CUDA).
  BatchLoader(Producer producer, BatchLoaderOptions options);
  // Stops and joins the workers: a producer call in progress is finished (one
  // batch's time at most), the batches not taken are dropped. Never throws.
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The batch of the next step, waiting for it if it is not ready. When the
  // producer threw for this step, rethrows that exception (same type and
  // message) here, not earlier; the following call returns the step after.
  // Throws ctmq::Error past last_step.
  Batch next();

  // The step next() returns next.
  int64_t next_step() const { return next_step_; }
  // Seconds next() has spent waiting since construction, all calls summed:
  // the trainer's data stall. With 0 workers, the whole production time.
  double waited_s() const { return waited_s_; }

 private:
  struct Result {
    Batch batch;
    std::exception_ptr error;
  };
  void work();
  void stop() noexcept;  // sets stopping_ and joins the workers

  Producer producer_;
  BatchLoaderOptions options_;
  int64_t next_step_;  // consumer side only
  double waited_s_ = 0;

  std::mutex mutex_;
  std::condition_variable ready_;      // a result arrived (consumer waits)
  std::condition_variable room_;       // the window moved or stopping (workers wait)
  int64_t next_to_claim_;              // guarded by mutex_
  int64_t delivered_;                  // guarded by mutex_: steps below are taken
  bool stopping_ = false;              // guarded by mutex_
  std::map<int64_t, Result> results_;  // guarded by mutex_
  std::vector<std::thread> threads_;
};

// Makes the calling thread run LibTorch's intra-op work on itself alone
// (OpenMP's per-thread thread count = 1); other threads keep theirs. What
// each BatchLoader worker does first; a no-op where LibTorch is not built
// with OpenMP (its native pool is shared, not per thread).
void use_one_intra_op_thread_here();

}  // namespace ctmq::data
