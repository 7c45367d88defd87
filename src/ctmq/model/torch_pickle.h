// Reads the tensors of a file written by Python's torch.save that holds a dict
// (a state_dict, or a training checkpoint with dicts inside), in both formats
// torch.save has written since PyTorch 0.1.10:
//   - zip (PyTorch >= 1.6, the default): the archive's data.pkl, storages in
//     data/KEY records;
//   - legacy (PyTorch < 1.6, or _use_new_zipfile_serialization=False): five
//     pickles in a row (magic number, protocol 1001, sys_info, the object, the
//     storage keys), then each storage as an 8-byte little-endian element
//     count and its raw bytes.
// The dict may be plain or model.state_dict() saved as it is (an OrderedDict
// carrying `_metadata`, which LibTorch 1.13's torch::pickle_load rejects).
// ctmq unpickles with its own small unpickler that understands exactly the
// opcodes and globals torch.save emits for such dicts. The tar format of
// PyTorch < 0.1.10 is refused with a message that says how to convert it.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ctmq::model {

enum class TorchFileFormat { kZip, kLegacy };
std::string torch_file_format_name(TorchFileFormat format);  // "zip" | "legacy"

// A dict of a torch.save file. Only string keys are kept.
struct TorchSavedDict {
  // Tensor values, in file order (views of CPU tensors; parameters unwrapped).
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  // Dict values (e.g. a checkpoint's "state_dict"), in file order.
  std::vector<std::pair<std::string, std::shared_ptr<const TorchSavedDict>>> dicts;
  // Every string key, whatever its value, in file order.
  std::vector<std::string> keys;
  // model.state_dict()'s `_metadata`: true when the dict carries one; then
  // module_versions maps a module prefix ("" is the root, "layer1.0.bn1") to
  // the `version` recorded for it (modules without one are absent).
  bool has_metadata = false;
  std::map<std::string, int64_t> module_versions;
};

struct TorchSavedFile {
  TorchFileFormat format = TorchFileFormat::kZip;
  TorchSavedDict root;
};

// Throws ctmq::Error naming `path` for a missing, corrupt, truncated or
// unsupported file, or one whose top-level object is not a dict.
TorchSavedFile read_torch_saved_file(const std::string& path);

// The top-level dict's tensors, in file order (read_torch_saved_file(path).root.tensors).
std::vector<std::pair<std::string, torch::Tensor>> read_torch_saved_tensors(
    const std::string& path);

}  // namespace ctmq::model
