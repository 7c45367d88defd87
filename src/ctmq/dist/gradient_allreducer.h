// GradientAllreducer: averages the gradients of a model over all ranks.
//
// Gradients are fused into buckets of about `bucket_bytes` (same dtype and
// device inside a bucket), built once in the order of `parameters`, so every
// rank reduces the same buckets in the same order: one allreduce per bucket,
// then a division by the number of ranks. On CPU the reduction runs after
// backward (overlapping it with backward does not pay on a few cores); a
// bucket of a GPU model is staged through host memory by the Communicator.
//
// REQUIRES: every rank passes the same parameters (same shapes, same order).
// A parameter that got no gradient this step contributes zeros (its .grad()
// is set to zeros), so ranks never disagree on the bucket layout.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "ctmq/dist/communicator.h"

namespace ctmq::dist {

class GradientAllreducer {
 public:
  static constexpr int64_t kDefaultBucketBytes = 4 << 20;  // 4 MiB

  // Keeps the parameters that require a gradient; `comm` must outlive this.
  GradientAllreducer(Communicator& comm, std::vector<torch::Tensor> parameters,
                     int64_t bucket_bytes = kDefaultBucketBytes);

  // Replaces every parameter's .grad() by its mean over ranks. A no-op on one rank.
  void average_gradients();

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<int64_t> members;  // indices into parameters_
    int64_t numel = 0;
  };
  Communicator& comm_;
  std::vector<torch::Tensor> parameters_;
  std::vector<Bucket> buckets_;
};

}  // namespace ctmq::dist
