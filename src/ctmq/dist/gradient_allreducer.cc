#include "ctmq/dist/gradient_allreducer.h"

#include "ctmq/common/error.h"

namespace ctmq::dist {

GradientAllreducer::GradientAllreducer(Communicator& comm, std::vector<torch::Tensor> parameters,
                                       int64_t bucket_bytes)
    : comm_(comm) {
  CTMQ_ASSERT(bucket_bytes > 0);
  for (auto& p : parameters) {
    if (p.requires_grad()) parameters_.push_back(p);
  }
  int64_t bytes = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(parameters_.size()); ++i) {
    const auto& p = parameters_[i];
    const bool fits = !buckets_.empty() && bytes + p.numel() * p.element_size() <= bucket_bytes;
    const bool same_kind = !buckets_.empty() &&
                           parameters_[buckets_.back().members.front()].dtype() == p.dtype() &&
                           parameters_[buckets_.back().members.front()].device() == p.device();
    if (!(fits && same_kind)) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().members.push_back(i);
    buckets_.back().numel += p.numel();
    bytes += p.numel() * p.element_size();
  }
}

void GradientAllreducer::average_gradients() {
  if (comm_.size() == 1) return;
  torch::NoGradGuard no_grad;
  const double scale = 1.0 / comm_.size();
  for (const auto& bucket : buckets_) {
    std::vector<torch::Tensor> flat_parts;
    flat_parts.reserve(bucket.members.size());
    for (int64_t i : bucket.members) {
      auto& p = parameters_[i];
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      flat_parts.push_back(p.grad().reshape({-1}));
    }
    std::vector<torch::Tensor> flat{torch::cat(flat_parts)};
    comm_.allreduce_sum(flat);
    flat[0].mul_(scale);
    int64_t offset = 0;
    for (int64_t i : bucket.members) {
      auto& p = parameters_[i];
      const int64_t n = p.numel();
      p.grad().copy_(flat[0].narrow(0, offset, n).view_as(p.grad()));
      offset += n;
    }
  }
}

}  // namespace ctmq::dist
