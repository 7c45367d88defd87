// GradientAllreducer: averages the gradients of a model over all ranks.
//
// Gradients are fused into buckets of about `bucket_bytes` (same dtype and
// device inside a bucket), built once in reverse order of `parameters` (the
// order backward produces their gradients), so every rank reduces the same
// buckets in the same order: one allreduce per bucket, then a division by the
// number of ranks.
//
// Two schedules, with the same buckets and therefore the same sums:
//   - after backward (overlap = false): average_gradients() gathers each
//     bucket from .grad(), reduces it and writes it back;
//   - overlapped (overlap = true, as PyTorch DDP and Horovod do): a hook on
//     each parameter copies its gradient into its bucket as backward produces
//     it, and a bucket's reduction starts (Communicator::start_allreduce_sum)
//     as soon as all its gradients are in, while backward goes on with the
//     layers below; average_gradients() then starts what is left, waits, and
//     writes the means to .grad(). Buckets start strictly in order on every
//     rank. Overlap applies where the hooks may call the communicator: CPU
//     parameters (autograd runs their hooks on the thread that called
//     backward) or a communicator that starts_from_any_thread(); elsewhere the
//     reducer runs after backward (overlapping() says which).
//
// REQUIRES: every rank passes the same parameters (same shapes, same order),
// and, when overlapping, one backward pass between average_gradients() calls
// (a second gradient for a parameter before it is an error). A parameter that
// got no gradient this step on this rank contributes zeros (its .grad() is
// set to zeros), so ranks never disagree on the bucket layout.
//
// Unused parameters (as DDP's find_unused_parameters, decided once): after
// the first step, the parameters no rank gave a gradient (LSQ's weight step
// at 32 or 1 bit) have their .grad() reset to undefined, as on one rank, so
// an optimizer skips them (no weight decay either), and are left out of the
// buckets, which no longer wait for them. A dropped parameter must get no
// gradient later in the stage: one that does is an error.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "ctmq/dist/communicator.h"

namespace ctmq::dist {

class GradientAllreducer {
 public:
  static constexpr int64_t kDefaultBucketBytes = 4 << 20;  // 4 MiB

  // Keeps the parameters that require a gradient; `comm` must outlive this.
  GradientAllreducer(Communicator& comm, std::vector<torch::Tensor> parameters,
                     int64_t bucket_bytes = kDefaultBucketBytes, bool overlap = false);
  // Removes the hooks.
  ~GradientAllreducer();
  GradientAllreducer(const GradientAllreducer&) = delete;
  GradientAllreducer& operator=(const GradientAllreducer&) = delete;

  // Replaces every parameter's .grad() by its mean over ranks. A no-op on one rank.
  void average_gradients();

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Parameters left out after the first step because no rank used them.
  int64_t num_dropped() const;
  // True when the reductions start from gradient hooks during backward.
  bool overlapping() const { return overlap_; }

 private:
  struct Bucket {
    std::vector<int64_t> members;  // indices into parameters_
    int64_t numel = 0;
    torch::Tensor flat;  // overlapped: the gradients as they arrive
    int64_t arrived = 0;
    std::unique_ptr<PendingReduction> pending;
  };
  // Buckets over the parameters not dropped, in backward's order.
  void build_buckets();
  // Per parameter: 1 when this rank has its gradient this step.
  std::vector<int64_t> used_here() const;
  // Per parameter: true when no rank had it (collective: a sum of used_here).
  std::vector<bool> globally_unused(const std::vector<int64_t>& used_here);
  void drop(const std::vector<bool>& unused);
  void on_gradient(int64_t index, const torch::Tensor& grad);
  // Starts, in order, the buckets whose gradients are all in.
  void start_complete_buckets();
  void average_after_backward();
  void average_overlapped();
  // The parameter's .grad(), set to zeros first if it has none.
  const torch::Tensor& grad_or_zeros(int64_t index);
  // Divides a bucket's sums by the rank count and copies them to the .grad()s.
  void write_means(const Bucket& bucket, torch::Tensor& sums);

  Communicator& comm_;
  std::vector<torch::Tensor> parameters_;
  std::vector<Bucket> buckets_;
  int64_t bucket_bytes_;
  bool overlap_ = false;
  int64_t steps_ = 0;               // average_gradients() calls done
  std::vector<bool> dropped_;       // per parameter: unused on every rank
  std::vector<int64_t> bucket_of_;  // per parameter, -1 when dropped
  std::vector<int64_t> offset_of_;  // per parameter, in its bucket's flat
  std::vector<bool> arrived_;       // per parameter, this step
  std::vector<unsigned> hooks_;     // per parameter, when overlapping
  int64_t next_to_start_ = 0;
};

}  // namespace ctmq::dist
