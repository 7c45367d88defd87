// Starting from torchvision's pretrained weights.
#pragma once

#include <string>

#include "ctmq/model/network.h"

namespace ctmq::model {

// Copies a torchvision state_dict saved by Python's torch.save into `net`,
// name by name (ctmq's ResNet-18 uses torchvision's names and shapes). Both a
// plain dict and model.state_dict() saved as it is are accepted (see
// torch_pickle.h). Every parameter and buffer of `net` except LSQ step sizes
// must be in the file with the same shape, and every tensor of the file must
// be used; otherwise ctmq::Error names the first offending tensor. k-dependent
// quantizer state is re-initialised for net's current bit depths.
void import_torchvision_state_dict(NetworkImpl& net, const std::string& path);

}  // namespace ctmq::model
