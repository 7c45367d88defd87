// Saving and loading a network's weights with the metadata needed to rebuild it.
//
// File: a torch::serialize archive (Module::save layout: parameters and
// buffers by module path), sealed from format 3 by a 24-byte footer
// (common/sealed_file.h, magic "CTMQNETW": size, CRC-32 of every byte,
// version) that is verified before LibTorch parses anything, plus metadata
// keys "ctmq_meta_*": format version,
// architecture, num_classes, in_channels, width, block, quantizer kinds, edge bits,
// bit depths, input normalisation, ctmq version, tensors_crc32. Every load verifies the tensors
// against tensors_crc32 and throws ctmq::Error naming the file when a byte
// changed (a flipped bit inside the zip leaves its structure intact). Written atomically (temporary
// file, fsync, rename): readers see the old file or the new one, never a partial one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ctmq/model/network.h"

namespace ctmq::model {

// Format version of the metadata; readers refuse newer ones.
// 2 added "block" (model::Block; a format-1 file is read as Block::kTorchvision)
// and "tensors_crc32", the CRC-32 of every tensor, verified on every load.
// 3 added "input_mean" and "input_std" (model::Preprocessing; absent = unknown)
// and the footer over the whole file (a damaged zip entry or TorchScript code
// entry outside the tensors crashed or misled LibTorch's readers).
constexpr int64_t kNetworkFileFormat = 3;

// Throws ctmq::Error naming `path` when it cannot be written.
void save_network(NetworkImpl& net, const std::string& path);

// Rebuilds the saved network at its saved bit depths and loads every tensor.
std::shared_ptr<NetworkImpl> load_network(const std::string& path);

// Loads parameters and buffers into `net`, which keeps its own bit depths and
// quantizer kinds. Throws ctmq::Error saying what differs when architecture,
// classes, input channels or width differ, or when a tensor is missing or has
// another shape. LSQ step sizes absent from the file are kept; when the file's
// bit depths differ from net's, k-dependent quantizer state is re-initialised
// for net's depths from the loaded weights (method.md: a new step re-inits it).
void load_weights_into(NetworkImpl& net, const std::string& path);

// Metadata of a network file, without loading tensors.
struct NetworkFileInfo {
  ModelOptions options;
  quant::BitDepths bits;
  std::string ctmq_version;
};
NetworkFileInfo read_network_info(const std::string& path);

// One quantized layer, for reports. `quantized_weight` is what forward() uses
// at the layer's current depth (computed without gradient).
struct QuantizedLayerView {
  std::string name;  // module path, e.g. "layer1.0.conv1"
  torch::Tensor latent_weight;
  torch::Tensor quantized_weight;
  int bits;  // weight bits of this layer (32: full precision)
};
std::vector<QuantizedLayerView> quantized_layers(NetworkImpl& net);

}  // namespace ctmq::model
