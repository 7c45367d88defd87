// Which network a file's tensors belong to: what must agree for the weights
// of one network to fit another (architecture, classes, input channels,
// width). Written into and compared for both checkpoints
// (train/checkpoint.h, keys "meta_*") and network files (weights_io.h, keys
// "ctmq_meta_*"): one list of keys, one comparison, one message.
// Bit depths, quantizer kinds and block are not part of it: a stage may load
// weights trained at other depths (method.md), and a block change is a
// warning (docs/models.md, converting weights).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "ctmq/model/network.h"

namespace ctmq::model {

struct NetworkDescription {
  Architecture architecture = Architecture::kSmallResNet;
  int64_t num_classes = 0;
  int64_t in_channels = 0;
  int64_t width = 0;  // channels of the first stage; resnet18 ignores it
};

NetworkDescription describe_network(const ModelOptions& options);

// "resnet20, 10 classes, 3 input channels, width 16" (resnet18: no width).
std::string to_string(const NetworkDescription& network);

// Same architecture, classes and input channels, and the same width where
// the architecture uses one (not resnet18).
bool same_network(const NetworkDescription& a, const NetworkDescription& b);

// Throws ctmq::Error "SOURCE: architecture FOUND; this stage builds EXPECTED"
// (then "; REMEDY" when given) unless same_network(found, expected). SOURCE
// names the file, e.g. "checkpoint PATH".
void check_same_network(const NetworkDescription& found, const NetworkDescription& expected,
                        const std::string& source, const std::string& remedy = "");

// The metadata of a description: keys "architecture" (architecture_name),
// "num_classes", "in_channels", "width" (int64). Each file kind adds its own
// key prefix.
std::vector<std::pair<std::string, c10::IValue>> network_metadata(
    const NetworkDescription& network);

// The inverse: `read(key)` returns the value stored under one of those keys
// (and throws, naming the file, when it is missing). Throws ctmq::Error for an
// unknown architecture name (parse_architecture).
NetworkDescription network_from_metadata(
    const std::function<c10::IValue(const std::string& key)>& read);

}  // namespace ctmq::model
