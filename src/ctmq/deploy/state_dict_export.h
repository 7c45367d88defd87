// A network as a PyTorch state_dict plus the description that rebuilds its
// fake-quantized forward in plain PyTorch (docs/deploy.md, "In PyTorch";
// analysis/ctmq_analysis/torch_model.py rebuilds it).
//
// Two files, both written atomically:
//   OUTPUT       torch.save's zip format, a plain dict without TorchScript type
//                tags (deploy/torch_save.h): Python's torch.load(OUTPUT), also
//                with weights_only=True, returns a dict of module
//                path -> tensor, the names of Module::named_parameters() and
//                named_buffers() ("layer1.0.conv1.weight", "bn1.running_mean",
//                LSQ "weight_step"/"input_step", PACT "input_clip"), latent
//                (unquantized) float32 weights, int64 num_batches_tracked.
//   OUTPUT.json  the description: architecture, width, classes, input
//                channels, block, bit depths, quantizer kinds, granularity,
//                edge_layer_bits, input normalisation, and per quantized layer
//                its kind, geometry and (weight, activation) bits; plus the
//                size and CRC-32 of OUTPUT, so a reader detects a description
//                that belongs to another export.
#pragma once

#include <string>

#include "ctmq/model/network.h"

namespace ctmq::deploy {

// Format name and version of OUTPUT.json ("format", "version"); readers refuse
// newer versions.
inline constexpr const char* kStateDictFormat = "ctmq-state-dict";
constexpr int kStateDictVersion = 1;

// The description file of `output`: output + ".json".
std::string state_dict_description_path(const std::string& output);

// The tensors of `net` as torch.save zip bytes (a dict, in module order).
std::string encode_state_dict(model::NetworkImpl& net);

// The description of `net` as JSON text; `state_dict_bytes` is OUTPUT's
// content (its size and CRC-32 are recorded), `source` the network file.
// Throws ctmq::Error naming `source` when the network has no recorded input
// normalisation (a network file older than format 3) or an LSQ input step
// that was never initialised (the network cannot be evaluated, in ctmq either).
std::string describe_network(model::NetworkImpl& net, const std::string& state_dict_bytes,
                             const std::string& source);

// Writes OUTPUT.json, then OUTPUT, each atomically, after checking that
// torch::pickle_load reads OUTPUT back with every tensor equal. Returns the
// number of bytes of OUTPUT. Throws ctmq::Error naming the file.
size_t write_state_dict_export(model::NetworkImpl& net, const std::string& output,
                               const std::string& source);

}  // namespace ctmq::deploy
