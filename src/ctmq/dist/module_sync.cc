#include "ctmq/dist/module_sync.h"

#include <sstream>

#include "ctmq/common/checksum.h"
#include "ctmq/common/error.h"

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

void average_buffers(Communicator& comm, torch::nn::Module& module) {
  if (comm.size() == 1) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> targets;
  for (auto& b : module.buffers())
    if (b.is_floating_point() && b.numel() > 0) targets.push_back(b);
  if (targets.empty()) return;
  std::vector<torch::Tensor> staged;
  staged.reserve(targets.size());
  for (auto& t : targets) staged.push_back(t.detach().to(torch::kFloat64).contiguous());
  comm.allreduce_sum(staged);
  // A sum's rounding may depend on the rank in some reduction algorithms:
  // rank 0's mean is the one every replica keeps.
  for (auto& s : staged) s.div_(static_cast<double>(comm.size()));
  comm.broadcast(staged, 0);
  for (size_t i = 0; i < targets.size(); ++i) targets[i].copy_(staged[i]);
}

uint32_t module_state_crc(const torch::nn::Module& module) {
  uint32_t crc = 0;
  auto add = [&crc](const torch::Tensor& t) {
    const torch::Tensor host = t.detach().to(torch::kCPU).contiguous();
    crc = crc32_of(host.data_ptr(), host.nbytes(), crc);
  };
  for (const auto& p : module.parameters()) add(p);
  for (const auto& b : module.buffers()) add(b);
  return crc;
}

void check_replicas_agree(Communicator& comm, const torch::nn::Module& module,
                          const std::string& where) {
  if (comm.size() == 1) return;
  const auto own = static_cast<int64_t>(module_state_crc(module));
  std::vector<torch::Tensor> root{torch::full({1}, own, torch::kInt64)};
  comm.broadcast(root, 0);
  // differs[r] = 1 on rank r when its state is not rank 0's.
  std::vector<torch::Tensor> differs{torch::zeros({comm.size()}, torch::kInt64)};
  if (own != root[0].item<int64_t>()) differs[0][comm.rank()] = 1;
  comm.allreduce_sum(differs);
  std::ostringstream ranks;
  int count = 0;
  for (int r = 0; r < comm.size(); ++r) {
    if (differs[0][r].item<int64_t>() == 0) continue;
    ranks << (count++ ? ", " : "") << r;
  }
  CTMQ_CHECK(count == 0, "replicas differ at " << where << ": the weights or buffers of rank(s) "
                                               << ranks.str() << " of " << comm.size()
                                               << " are not rank 0's (CRC-32 of the state); the "
                                                  "ranks no longer train one model. This is a "
                                                  "fault of ctmq or of a rank's hardware: please "
                                                  "report it with the stage's logs");
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
