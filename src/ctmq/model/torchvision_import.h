// Starting from torchvision's pretrained weights.
#pragma once

#include <string>

#include "ctmq/common/enum_names.h"
#include "ctmq/model/network.h"

namespace ctmq::model {

// What the import does with the file's classifier (fc.weight [C, 512], fc.bias [C]).
enum class PretrainedClassifier {
  kUse,     // copy it; C must be the network's class count, else ctmq::Error naming both
  kReinit,  // ignore it (fine-tuning onto another data set): fc is initialised afresh as
            // torch.nn.Linear does, from the global torch generator (the stage's seed)
};
inline constexpr EnumTable<PretrainedClassifier, 2> kPretrainedClassifierNames{{
    {PretrainedClassifier::kUse, "use"},
    {PretrainedClassifier::kReinit, "reinit"},
}};
// "use" | "reinit"; throws ctmq::Error naming the accepted values.
PretrainedClassifier parse_pretrained_classifier(const std::string& name);
std::string pretrained_classifier_name(PretrainedClassifier classifier);

// Copies a torchvision state_dict saved by Python's torch.save into `net`,
// name by name (ctmq's ResNet-18 uses torchvision's names and shapes).
// Accepts what torchvision's strict load_state_dict accepts from files of any
// PyTorch release since 0.1.10: zip or legacy format (torch_pickle.h), a plain
// dict or model.state_dict() as it is, any floating dtype (converted, as
// copy_ does), and BatchNorm without `num_batches_tracked` where its module
// version in `_metadata` is absent or < 2 (files of PyTorch < 0.4.1), which
// then counts 0 as torch fills in.
//
// Every other parameter and buffer of `net` except quantizer state (LSQ steps,
// PACT ranges) must be in the file with the same shape, and every tensor of
// the file must be used; otherwise ctmq::Error names the first offending
// tensor. A file whose keys carry DataParallel's `module.` prefix, or a
// training checkpoint with the state_dict nested under a key, is refused with
// a message that names the layout and gives the Python that converts it. A
// class count other than the network's is refused unless `classifier` is
// kReinit. Nothing in `net` changes unless the import succeeds; k-dependent
// quantizer state is then re-initialised for net's current bit depths.
void import_torchvision_state_dict(NetworkImpl& net, const std::string& path,
                                   PretrainedClassifier classifier = PretrainedClassifier::kUse);

}  // namespace ctmq::model
