#include "ctmq/dist/gradient_allreducer.h"

#include "ctmq/common/error.h"

namespace ctmq::dist {

GradientAllreducer::GradientAllreducer(Communicator& comm, std::vector<torch::Tensor> parameters,
                                       int64_t bucket_bytes, bool overlap)
    : comm_(comm), bucket_bytes_(bucket_bytes) {
  CTMQ_ASSERT(bucket_bytes > 0);
  for (auto& p : parameters) {
    if (p.requires_grad()) parameters_.push_back(p);
  }
  const int64_t count = static_cast<int64_t>(parameters_.size());
  arrived_.assign(count, false);
  dropped_.assign(count, false);
  bool on_cpu = true;
  for (const auto& p : parameters_) on_cpu = on_cpu && p.device().is_cpu();
  overlap_ = overlap && comm_.size() > 1 && (on_cpu || comm_.starts_from_any_thread());
  build_buckets();
  if (!overlap_) return;
  for (int64_t i = 0; i < count; ++i) {
    hooks_.push_back(parameters_[i].register_hook(
        [this, i](const torch::Tensor& grad) { on_gradient(i, grad); }));
  }
}

void GradientAllreducer::build_buckets() {
  const int64_t count = static_cast<int64_t>(parameters_.size());
  buckets_.clear();
  bucket_of_.assign(count, -1);
  offset_of_.assign(count, 0);
  int64_t bytes = 0;
  for (int64_t i = count - 1; i >= 0; --i) {  // backward's order
    if (dropped_[i]) continue;
    const auto& p = parameters_[i];
    const bool fits = !buckets_.empty() && bytes + p.numel() * p.element_size() <= bucket_bytes_;
    const bool same_kind = !buckets_.empty() &&
                           parameters_[buckets_.back().members.front()].dtype() == p.dtype() &&
                           parameters_[buckets_.back().members.front()].device() == p.device();
    if (!(fits && same_kind)) {
      buckets_.emplace_back();
      bytes = 0;
    }
    Bucket& bucket = buckets_.back();
    bucket_of_[i] = static_cast<int64_t>(buckets_.size()) - 1;
    offset_of_[i] = bucket.numel;
    bucket.members.push_back(i);
    bucket.numel += p.numel();
    bytes += p.numel() * p.element_size();
  }
  if (!overlap_) return;
  for (Bucket& bucket : buckets_) {
    const auto& first = parameters_[bucket.members.front()];
    bucket.flat = torch::empty({bucket.numel}, first.options().requires_grad(false));
  }
}

GradientAllreducer::~GradientAllreducer() {
  for (size_t i = 0; i < hooks_.size(); ++i)
    if (!dropped_[i]) parameters_[i].remove_hook(hooks_[i]);
}

void GradientAllreducer::on_gradient(int64_t index, const torch::Tensor& grad) {
  CTMQ_CHECK(!arrived_[index], "gradient allreduce: parameter "
                                   << index << " got a second gradient before the "
                                   << "gradients were averaged; overlapping the "
                                   << "allreduce with backward needs one backward "
                                   << "pass per step ([train] overlap-allreduce = "
                                   << "false allows several)");
  torch::NoGradGuard no_grad;
  Bucket& bucket = buckets_[bucket_of_[index]];
  const auto& p = parameters_[index];
  bucket.flat.narrow(0, offset_of_[index], p.numel()).copy_(grad.reshape({-1}));
  arrived_[index] = true;
  ++bucket.arrived;
  start_complete_buckets();
  for (Bucket& b : buckets_) {  // let started reductions advance (MPI progresses inside calls)
    if (b.pending) b.pending->test();
  }
}

void GradientAllreducer::start_complete_buckets() {
  while (next_to_start_ < num_buckets()) {
    Bucket& bucket = buckets_[next_to_start_];
    if (bucket.arrived < static_cast<int64_t>(bucket.members.size())) return;
    bucket.pending = comm_.start_allreduce_sum(bucket.flat);
    ++next_to_start_;
  }
}

void GradientAllreducer::average_gradients() {
  if (comm_.size() == 1) return;
  torch::NoGradGuard no_grad;
  const bool first = steps_ == 0;
  // This rank's census of the first step, taken before the reductions set
  // missing gradients to zeros; summed over ranks after them, so that every
  // rank issues its collectives in the same order (a bucket may start from a
  // hook on one rank and only after backward on another).
  std::vector<int64_t> used;
  if (first) used = used_here();
  for (int64_t i = 0; i < static_cast<int64_t>(parameters_.size()); ++i) {
    CTMQ_CHECK(!dropped_[i] || !parameters_[i].grad().defined(),
               "gradient allreduce: parameter "
                   << i << " got a gradient, but no rank gave it one in the first step, so it "
                   << "was left out of the reductions (a parameter must be used in every step "
                   << "or in none of a stage)");
  }
  if (overlap_) {
    average_overlapped();
  } else {
    average_after_backward();
  }
  ++steps_;
  if (first) drop(globally_unused(used));
}

std::vector<int64_t> GradientAllreducer::used_here() const {
  std::vector<int64_t> used(parameters_.size());
  for (size_t i = 0; i < parameters_.size(); ++i)
    used[i] = (overlap_ ? arrived_[i] : parameters_[i].grad().defined()) ? 1 : 0;
  return used;
}

std::vector<bool> GradientAllreducer::globally_unused(const std::vector<int64_t>& used_here) {
  const int64_t count = static_cast<int64_t>(used_here.size());
  std::vector<torch::Tensor> used{torch::tensor(used_here, torch::kInt64)};
  comm_.allreduce_sum(used);
  std::vector<bool> unused(count);
  for (int64_t i = 0; i < count; ++i) unused[i] = used[0][i].item<int64_t>() == 0;
  return unused;
}

void GradientAllreducer::drop(const std::vector<bool>& unused) {
  bool any = false;
  for (int64_t i = 0; i < static_cast<int64_t>(parameters_.size()); ++i) {
    if (!unused[i]) continue;
    any = true;
    dropped_[i] = true;
    parameters_[i].mutable_grad() = torch::Tensor();  // as on one rank: no gradient
    if (overlap_) parameters_[i].remove_hook(hooks_[i]);
  }
  if (any) build_buckets();
}

int64_t GradientAllreducer::num_dropped() const {
  int64_t n = 0;
  for (bool d : dropped_) n += d ? 1 : 0;
  return n;
}

const torch::Tensor& GradientAllreducer::grad_or_zeros(int64_t index) {
  auto& p = parameters_[index];
  if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
  return p.grad();
}

void GradientAllreducer::write_means(const Bucket& bucket, torch::Tensor& sums) {
  sums.mul_(1.0 / comm_.size());
  for (int64_t i : bucket.members) {
    const torch::Tensor& grad = grad_or_zeros(i);
    grad.copy_(sums.narrow(0, offset_of_[i], grad.numel()).view_as(grad));
  }
}

void GradientAllreducer::average_after_backward() {
  for (const auto& bucket : buckets_) {
    std::vector<torch::Tensor> flat_parts;
    flat_parts.reserve(bucket.members.size());
    for (int64_t i : bucket.members) flat_parts.push_back(grad_or_zeros(i).reshape({-1}));
    std::vector<torch::Tensor> flat{torch::cat(flat_parts)};
    comm_.allreduce_sum(flat);
    write_means(bucket, flat[0]);
  }
}

void GradientAllreducer::average_overlapped() {
  // Parameters backward did not reach contribute their .grad() (zeros if none).
  for (int64_t b = next_to_start_; b < num_buckets(); ++b) {
    Bucket& bucket = buckets_[b];
    for (int64_t i : bucket.members) {
      if (arrived_[i]) continue;
      bucket.flat.narrow(0, offset_of_[i], parameters_[i].numel())
          .copy_(grad_or_zeros(i).reshape({-1}));
      arrived_[i] = true;
      ++bucket.arrived;
    }
  }
  start_complete_buckets();
  for (Bucket& bucket : buckets_) {
    bucket.pending->wait();
    bucket.pending.reset();
    write_means(bucket, bucket.flat);
    bucket.arrived = 0;
  }
  arrived_.assign(arrived_.size(), false);
  next_to_start_ = 0;
}

}  // namespace ctmq::dist
