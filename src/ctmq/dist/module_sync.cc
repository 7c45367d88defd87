#include "ctmq/dist/module_sync.h"

namespace ctmq::dist {

void broadcast_module_state(Communicator& comm, torch::nn::Module& module, int root) {
  if (comm.size() == 1) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> targets;
  for (auto& p : module.parameters()) targets.push_back(p);
  for (auto& b : module.buffers()) targets.push_back(b);
  std::vector<torch::Tensor> staged;
  staged.reserve(targets.size());
  for (auto& t : targets) staged.push_back(t.detach().contiguous());
  comm.broadcast(staged, root);
  for (size_t i = 0; i < targets.size(); ++i) {
    if (staged[i].data_ptr() != targets[i].data_ptr()) targets[i].copy_(staged[i]);
  }
}

std::vector<double> allreduce_sum_values(Communicator& comm, std::vector<double> values) {
  if (comm.size() == 1 || values.empty()) return values;
  std::vector<torch::Tensor> t{
      torch::tensor(values, torch::TensorOptions().dtype(torch::kFloat64)).contiguous()};
  comm.allreduce_sum(t);
  auto accessor = t[0].accessor<double, 1>();
  for (size_t i = 0; i < values.size(); ++i) values[i] = accessor[static_cast<int64_t>(i)];
  return values;
}

}  // namespace ctmq::dist
