// Writing a value as Python's torch.save writes a plain dict of tensors, with
// LibTorch's own pickler and zip writer: the file that
// torch.load(path, weights_only=True) (PyTorch 2.x's default) reads.
//
// torch::pickle_save tags every dict and list with its TorchScript type
// (torch.jit._pickle.restore_type_tag), a global that weights_only refuses;
// here the same pickler runs with those tags off, and the tensors are written
// as the zip records torch.load expects (data.pkl, data/0, data/1, ...).
#pragma once

#include <ATen/core/ivalue.h>

#include <string>

namespace ctmq::deploy {

// The bytes of a torch.save-format zip holding `value` (a dict, list or
// tensor; nested values too), without TorchScript type tags. Tensors are
// written from the CPU. torch::pickle_load reads the result back (as
// untyped containers).
std::string torch_save_untagged(const c10::IValue& value);

}  // namespace ctmq::deploy
