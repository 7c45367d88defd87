#include "ctmq/model/torchvision_import.h"

#include <map>

#include "ctmq/common/error.h"
#include "ctmq/model/torch_pickle.h"

namespace ctmq::model {
namespace {

bool is_quantizer_state(const std::string& name) {
  const auto dot = name.rfind('.');
  const std::string leaf = dot == std::string::npos ? name : name.substr(dot + 1);
  return leaf == "weight_step" || leaf == "input_step";
}

}  // namespace

void import_torchvision_state_dict(NetworkImpl& net, const std::string& path) {
  std::map<std::string, torch::Tensor> file;
  for (auto& [name, tensor] : read_torch_saved_tensors(path)) file[name] = tensor;

  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (auto& p : net.named_parameters()) targets.emplace_back(p.key(), p.value());
  for (auto& b : net.named_buffers()) targets.emplace_back(b.key(), b.value());

  // Check everything before changing anything.
  size_t used = 0;
  for (const auto& [name, target] : targets) {
    auto it = file.find(name);
    if (it == file.end()) {
      CTMQ_CHECK(is_quantizer_state(name), "torchvision file " << path << " has no tensor '" << name
                                                               << "' that this network needs");
      continue;
    }
    CTMQ_CHECK(it->second.sizes() == target.sizes(),
               "torchvision file " << path << ": '" << name << "' has shape " << it->second.sizes()
                                   << "; this network expects " << target.sizes()
                                   << " (check num_classes and in_channels)");
    ++used;
  }
  if (used != file.size()) {
    std::map<std::string, bool> known;
    for (const auto& t : targets) known[t.first] = true;
    for (const auto& f : file) {
      CTMQ_CHECK(known.count(f.first), "torchvision file " << path << " has tensor '" << f.first
                                                           << "' that this network does not");
    }
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    auto it = file.find(name);
    if (it != file.end()) target.copy_(it->second);
  }
  // Re-initialise k-dependent state (LSQ steps) from the imported weights.
  const quant::BitDepths bits = net.bit_depths();
  net.set_bit_depths(quant::BitDepths{});
  net.set_bit_depths(bits);
}

}  // namespace ctmq::model
