// Which samples each rank reads at each step.
//
// Epoch e visits permutation(seed, e) of [0, dataset_size) (identity when
// shuffle is off), cut into global batches of `global_batch` samples; the last
// partial batch is dropped so every rank takes the same number of steps. Rank r
// of R reads positions [r*B/R, (r+1)*B/R) of each global batch, so the ranks'
// subsets are disjoint and their union is exactly what one rank would read
// with the same global batch. A (epoch, step) cursor resumes anywhere.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace ctmq::data {

struct SamplerOptions {
  int64_t dataset_size = 0;
  int64_t global_batch = 0;  // REQUIRES: divisible by world_size, <= dataset_size
  int world_size = 1;
  int rank = 0;
  uint64_t seed = 0;
  bool shuffle = true;
};

class DistributedSampler {
 public:
  // Throws ctmq::Error when the options cannot work (more ranks than samples,
  // a global batch not divisible by the ranks or larger than the data set).
  explicit DistributedSampler(SamplerOptions options);

  int64_t steps_per_epoch() const;
  // This rank's indices at (epoch, step); step < steps_per_epoch().
  std::vector<int64_t> indices(int64_t epoch, int64_t step) const;

 private:
  SamplerOptions options_;
  // The current epoch's permutation, computed once per epoch and shared by
  // copies (which have the same options); guarded by its own mutex.
  struct EpochCache;
  std::shared_ptr<EpochCache> cache_;
};

// The permutation of [0, size) that epoch `epoch` visits under `seed`: a
// Fisher-Yates shuffle driven by splitmix64, identical on every platform.
std::vector<int64_t> epoch_permutation(int64_t size, uint64_t seed, int64_t epoch);

}  // namespace ctmq::data
