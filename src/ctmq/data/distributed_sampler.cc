#include "ctmq/data/distributed_sampler.h"

#include <mutex>
#include <numeric>

#include "ctmq/common/error.h"

namespace ctmq::data {
namespace {

// splitmix64: a fixed, portable mixing function, so permutations do not
// depend on the standard library's distributions (which differ between
// implementations).
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform integer in [0, bound) without modulo bias (Lemire's method).
uint64_t bounded(uint64_t& state, uint64_t bound) {
  unsigned __int128 product = static_cast<unsigned __int128>(splitmix64(state)) * bound;
  uint64_t low = static_cast<uint64_t>(product);
  if (low < bound) {
    const uint64_t threshold = (0 - bound) % bound;
    while (low < threshold) {
      product = static_cast<unsigned __int128>(splitmix64(state)) * bound;
      low = static_cast<uint64_t>(product);
    }
  }
  return static_cast<uint64_t>(product >> 64);
}

}  // namespace

struct DistributedSampler::EpochCache {
  std::mutex mutex;
  int64_t epoch = -1;
  std::vector<int64_t> order;
};

std::vector<int64_t> epoch_permutation(int64_t size, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(size));
  std::iota(order.begin(), order.end(), int64_t{0});
  uint64_t state = seed;
  uint64_t mixed = splitmix64(state) ^ static_cast<uint64_t>(epoch);
  state = mixed;
  splitmix64(state);
  // Fisher-Yates from the back.
  for (int64_t i = size - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(bounded(state, static_cast<uint64_t>(i) + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

DistributedSampler::DistributedSampler(SamplerOptions options)
    : options_(options), cache_(std::make_shared<EpochCache>()) {
  CTMQ_CHECK(options_.world_size >= 1 && options_.rank >= 0 && options_.rank < options_.world_size,
             "sampler: rank " << options_.rank << " is outside [0, " << options_.world_size << ")");
  CTMQ_CHECK(options_.global_batch > 0,
             "sampler: global batch " << options_.global_batch << " must be positive");
  CTMQ_CHECK(options_.global_batch % options_.world_size == 0,
             "sampler: global batch " << options_.global_batch << " is not divisible by the "
                                      << options_.world_size
                                      << " ranks; choose a batch that is a multiple of the ranks");
  CTMQ_CHECK(options_.world_size <= options_.dataset_size,
             "sampler: " << options_.world_size << " ranks but only " << options_.dataset_size
                         << " samples");
  CTMQ_CHECK(options_.global_batch <= options_.dataset_size,
             "sampler: global batch " << options_.global_batch << " is larger than the data set ("
                                      << options_.dataset_size
                                      << " samples); lower the batch size");
}

int64_t DistributedSampler::steps_per_epoch() const {
  return options_.dataset_size / options_.global_batch;
}

std::vector<int64_t> DistributedSampler::indices(int64_t epoch, int64_t step) const {
  CTMQ_CHECK(epoch >= 0 && step >= 0 && step < steps_per_epoch(),
             "sampler: cursor (epoch " << epoch << ", step " << step << ") is outside [0, "
                                       << steps_per_epoch() << ") steps per epoch");
  const int64_t per_rank = options_.global_batch / options_.world_size;
  const int64_t begin = step * options_.global_batch + options_.rank * per_rank;
  std::vector<int64_t> out(static_cast<size_t>(per_rank));
  if (!options_.shuffle) {
    std::iota(out.begin(), out.end(), begin);
    return out;
  }
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->epoch != epoch) {
    cache_->order = epoch_permutation(options_.dataset_size, options_.seed, epoch);
    cache_->epoch = epoch;
  }
  std::copy(cache_->order.begin() + begin, cache_->order.begin() + begin + per_rank, out.begin());
  return out;
}

}  // namespace ctmq::data
