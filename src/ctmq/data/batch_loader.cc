#include "ctmq/data/batch_loader.h"

#include <ATen/Config.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <chrono>

#include "ctmq/common/error.h"

namespace ctmq::data {

void use_one_intra_op_thread_here() {
#if AT_PARALLEL_OPENMP
  // LibTorch's OpenMP backend reads the thread count per calling thread
  // (omp_get_max_threads); a new thread's first parallel op sets it to the
  // process-wide torch::set_num_threads value and starts an OpenMP team of
  // that size for this thread alone. Initialise first (so that the lazy
  // initialisation does not undo this), then lower this thread's count only.
  // at::set_num_threads would change every thread's count. The OpenMP
  // runtime is the one LibTorch loaded, found at run time so that ctmq does
  // not link an OpenMP library of its own (gcc's libgomp or clang's libomp).
  // The initialisation goes through at::get_num_threads(), compiled inside
  // LibTorch: at::internal::lazy_init_num_threads() is inline with a
  // thread_local flag, and from PyTorch 2.x LibTorch keeps its own hidden
  // copy of that flag, so calling the inline function here left LibTorch's
  // flag unset and its first parallel op reset the count (1.13 shared one).
  (void)at::get_num_threads();
  using SetNumThreads = void (*)(int);
  static const auto omp_set_num_threads =
      reinterpret_cast<SetNumThreads>(::dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (omp_set_num_threads != nullptr) omp_set_num_threads(1);
#endif
}

BatchLoader::BatchLoader(Producer producer, BatchLoaderOptions options)
    : producer_(std::move(producer)),
      options_(options),
      next_step_(options.first_step),
      next_to_claim_(options.first_step),
      delivered_(options.first_step) {
  CTMQ_CHECK(producer_, "BatchLoader: no producer");
  CTMQ_CHECK(options_.last_step >= options_.first_step,
             "BatchLoader: last step " << options_.last_step << " is before the first step "
                                       << options_.first_step);
  CTMQ_CHECK(options_.workers >= 0,
             "[train] loader-workers " << options_.workers << " must be >= 0 (0 = serial)");
  CTMQ_CHECK(options_.prefetch >= 0,
             "BatchLoader: prefetch " << options_.prefetch << " must be >= 0 (0 = 2 per worker)");
  if (options_.workers == 0) return;
  if (options_.prefetch == 0) options_.prefetch = 2 * options_.workers;
  CTMQ_CHECK(options_.prefetch >= options_.workers,
             "BatchLoader: prefetch " << options_.prefetch << " is below the " << options_.workers
                                      << " workers; some would never run");
  CTMQ_CHECK(!options_.pin_memory || torch::cuda::is_available(),
             "BatchLoader: pinned memory needs CUDA (a CUDA build of LibTorch and a visible "
             "device); pin only when training on --device cuda");
  threads_.reserve(options_.workers);
  try {
    for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { work(); });
  } catch (...) {
    stop();  // joins the threads already started
    throw;
  }
}

BatchLoader::~BatchLoader() { stop(); }

void BatchLoader::stop() noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  room_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void BatchLoader::work() {
  use_one_intra_op_thread_here();
  // Batches are data, not part of a graph: no autograd records here.
  torch::NoGradGuard no_grad;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    room_.wait(lock, [&] {
      return stopping_ || next_to_claim_ >= options_.last_step ||
             next_to_claim_ < delivered_ + options_.prefetch;
    });
    if (stopping_ || next_to_claim_ >= options_.last_step) return;
    const int64_t step = next_to_claim_++;
    lock.unlock();
    Result result;
    try {
      result.batch = producer_(step);
      if (options_.pin_memory) {
        result.batch.images = result.batch.images.pin_memory();
        result.batch.labels = result.batch.labels.pin_memory();
      }
    } catch (...) {
      result.error = std::current_exception();
    }
    lock.lock();
    results_.emplace(step, std::move(result));
    // The consumer waits for one particular step; wake it for every arrival.
    ready_.notify_one();
  }
}

Batch BatchLoader::next() {
  CTMQ_CHECK(next_step_ < options_.last_step,
             "BatchLoader: next() past the last step " << options_.last_step);
  const auto start = std::chrono::steady_clock::now();
  const int64_t step = next_step_++;
  auto waited = [&] {
    waited_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  if (options_.workers == 0) {
    // Serial: the caller waits for the whole production.
    try {
      Batch batch = producer_(step);
      waited();
      return batch;
    } catch (...) {
      waited();
      throw;
    }
  }
  Result result;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [&] { return results_.count(step) > 0; });
    auto it = results_.find(step);
    result = std::move(it->second);
    results_.erase(it);
    delivered_ = step + 1;
  }
  room_.notify_all();
  waited();
  if (result.error) std::rethrow_exception(result.error);
  return std::move(result.batch);
}

}  // namespace ctmq::data
