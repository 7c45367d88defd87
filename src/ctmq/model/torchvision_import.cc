#include "ctmq/model/torchvision_import.h"

#include <cmath>
#include <map>
#include <sstream>

#include "ctmq/common/error.h"
#include "ctmq/model/torch_pickle.h"

namespace ctmq::model {
namespace {

constexpr const char* kDataParallelPrefix = "module.";
constexpr const char* kOption =
    "`pretrained-classifier = reinit` in [model] (ctmq-train "
    "--pretrained-classifier reinit)";

std::string leaf_of(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

std::string module_of(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? "" : name.substr(0, dot);
}

// ctmq's quantizer state, which torchvision files do not have.
bool is_quantizer_state(const std::string& name) {
  const std::string leaf = leaf_of(name);
  return leaf == "weight_step" || leaf == "input_step" || leaf == "input_clip";
}

bool is_classifier(const std::string& name) { return name == "fc.weight" || name == "fc.bias"; }

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// Every tensor key carries DataParallel's prefix.
bool has_data_parallel_prefix(const TorchSavedDict& dict) {
  if (dict.tensors.empty()) return false;
  for (const auto& t : dict.tensors) {
    if (!starts_with(t.first, kDataParallelPrefix)) return false;
  }
  return true;
}

// The nested dict with the most tensors (depth first), and its Python subscript.
void find_nested_tensors(const TorchSavedDict& dict, const std::string& subscript,
                         const TorchSavedDict*& best, std::string& best_subscript) {
  for (const auto& [key, nested] : dict.dicts) {
    const std::string here = subscript + "['" + key + "']";
    if (!nested->tensors.empty() && (!best || nested->tensors.size() > best->tensors.size())) {
      best = nested.get();
      best_subscript = here;
    }
    find_nested_tensors(*nested, here, best, best_subscript);
  }
}

std::string key_list(const std::vector<std::string>& keys) {
  constexpr size_t kShown = 8;
  std::ostringstream s;
  for (size_t i = 0; i < keys.size() && i < kShown; ++i) s << (i ? ", " : "") << keys[i];
  if (keys.size() > kShown) s << ", ... (" << keys.size() << " keys)";
  return s.str();
}

// A file none of whose tensors the network knows: name the two layouts people
// save by mistake, and the Python that converts them to a state_dict.
void diagnose_layout(const TorchSavedDict& root, const std::string& path) {
  const std::string strip = "{k.replace('module.', '', 1): v for k, v in ";
  const std::string load = "ckpt = torch.load('" + path + "', map_location='cpu'); ";
  const TorchSavedDict* nested = nullptr;
  std::string subscript;
  find_nested_tensors(root, "ckpt", nested, subscript);
  if (nested && nested->tensors.size() > root.tensors.size()) {
    const bool prefixed = has_data_parallel_prefix(*nested);
    CTMQ_FAIL("torchvision file "
              << path << " is a training checkpoint, not a state_dict: its top-level keys are "
              << key_list(root.keys) << ", and its " << nested->tensors.size()
              << " tensors sit under " << subscript
              << (prefixed ? " with DataParallel's 'module.' prefix (e.g. '" +
                                 nested->tensors.front().first + "')"
                           : "")
              << ". Save the state_dict alone, in Python: " << load << "torch.save("
              << (prefixed ? strip + subscript + ".items()}" : subscript)
              << ", 'resnet18.pt'); then import resnet18.pt");
  }
  if (has_data_parallel_prefix(root)) {
    CTMQ_FAIL("torchvision file "
              << path
              << " holds the state_dict of a DataParallel / DistributedDataParallel model: every "
                 "key starts with 'module.' (e.g. '"
              << root.tensors.front().first
              << "'). Strip the prefix in Python (or save model.module.state_dict() when "
                 "training): "
              << load << "torch.save(" << strip << "ckpt.items()}, 'resnet18.pt'); then import "
              << "resnet18.pt");
  }
}

}  // namespace

PretrainedClassifier parse_pretrained_classifier(const std::string& name) {
  return parse_enum(kPretrainedClassifierNames, name, "pretrained-classifier");
}
std::string pretrained_classifier_name(PretrainedClassifier classifier) {
  return enum_name(kPretrainedClassifierNames, classifier);
}

void import_torchvision_state_dict(NetworkImpl& net, const std::string& path,
                                   PretrainedClassifier classifier) {
  const TorchSavedFile saved = read_torch_saved_file(path);
  const TorchSavedDict& dict = saved.root;
  std::map<std::string, torch::Tensor> file;
  for (const auto& [name, tensor] : dict.tensors) file[name] = tensor;

  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (auto& p : net.named_parameters()) targets.emplace_back(p.key(), p.value());
  for (auto& b : net.named_buffers()) targets.emplace_back(b.key(), b.value());

  bool any_known = false;
  for (const auto& target : targets) any_known = any_known || file.count(target.first);
  if (!any_known) diagnose_layout(dict, path);

  // Check everything before changing anything.
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (target, source)
  std::vector<torch::Tensor> untracked;          // num_batches_tracked absent from an old file
  std::vector<torch::Tensor> classifier_params;  // fc.weight, then fc.bias (kReinit)
  for (const auto& [name, target] : targets) {
    auto it = file.find(name);
    if (it == file.end()) {
      if (is_quantizer_state(name)) continue;
      // BatchNorm's _load_from_state_dict fills in num_batches_tracked for
      // module versions < 2 (PyTorch < 0.4.1), or when `_metadata` has none.
      const auto version = dict.module_versions.find(module_of(name));
      const bool old_batch_norm = leaf_of(name) == "num_batches_tracked" &&
                                  (version == dict.module_versions.end() || version->second < 2);
      CTMQ_CHECK(old_batch_norm, "torchvision file " << path << " has no tensor '" << name
                                                     << "' that this network needs");
      untracked.push_back(target);
      continue;
    }
    const torch::Tensor& source = it->second;
    if (name == "fc.weight" && source.dim() == 2 && target.dim() == 2 &&
        source.size(1) == target.size(1) && source.size(0) != target.size(0)) {
      CTMQ_CHECK(classifier == PretrainedClassifier::kReinit,
                 "torchvision file " << path << " has a classifier for " << source.size(0)
                                     << " classes (fc.weight " << source.sizes()
                                     << ") but the data set has " << target.size(0)
                                     << " classes; to fine-tune onto " << target.size(0)
                                     << " classes, re-initialise the classifier with " << kOption);
    }
    const bool reinit_here = classifier == PretrainedClassifier::kReinit && is_classifier(name);
    const bool shape_ok =
        reinit_here ? source.dim() == target.dim() &&
                          (name == "fc.bias" || source.size(-1) == target.size(-1))  // in features
                    : source.sizes() == target.sizes();
    CTMQ_CHECK(shape_ok, "torchvision file " << path << ": '" << name << "' has shape "
                                             << source.sizes() << "; this network expects "
                                             << target.sizes()
                                             << " (check num_classes and in_channels)");
    CTMQ_CHECK(source.is_floating_point() == target.is_floating_point(),
               "torchvision file " << path << ": '" << name << "' has dtype " << source.dtype()
                                   << "; this network expects " << target.dtype());
    if (reinit_here) {
      CTMQ_ASSERT(name == "fc.weight" || !classifier_params.empty());
      classifier_params.push_back(target);
    } else {
      copies.emplace_back(target, source);
    }
  }
  if (copies.size() + classifier_params.size() != file.size()) {
    std::map<std::string, bool> known;
    for (const auto& t : targets) known[t.first] = true;
    for (const auto& f : file) {
      CTMQ_CHECK(known.count(f.first), "torchvision file " << path << " has tensor '" << f.first
                                                           << "' that this network does not");
    }
  }

  torch::NoGradGuard no_grad;
  for (auto& [target, source] : copies) target.copy_(source);
  for (auto& count : untracked) count.zero_();
  if (!classifier_params.empty()) {
    // torch.nn.Linear's initialisation, in place (as quant_linear.cc does);
    // fc.weight comes before fc.bias in named_parameters().
    torch::Tensor& weight = classifier_params.front();
    torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
    const double bound = 1.0 / std::sqrt(static_cast<double>(weight.size(1)));
    for (size_t i = 1; i < classifier_params.size(); ++i)
      torch::nn::init::uniform_(classifier_params[i], -bound, bound);
  }
  // Re-initialise k-dependent state (LSQ steps) from the imported weights.
  const quant::BitDepths bits = net.bit_depths();
  net.set_bit_depths(quant::BitDepths{});
  net.set_bit_depths(bits);
}

}  // namespace ctmq::model
