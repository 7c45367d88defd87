// Reads the tensors of a file written by Python's torch.save (the zip format
// of PyTorch >= 1.6) that holds a dict of tensors: a plain dict, or
// model.state_dict() saved as it is (an OrderedDict carrying `_metadata`,
// which LibTorch 1.13's torch::pickle_load cannot read). ctmq reads the zip
// archive's data.pkl with its own small unpickler that understands exactly
// the opcodes and globals torch.save emits for such dicts.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace ctmq::model {

// Entries in file order; non-tensor values (e.g. nested dicts) are skipped.
// Throws ctmq::Error naming `path` for a missing, legacy-format, corrupt or
// unsupported file.
std::vector<std::pair<std::string, torch::Tensor>> read_torch_saved_tensors(
    const std::string& path);

}  // namespace ctmq::model
