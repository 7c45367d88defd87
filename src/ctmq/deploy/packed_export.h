// From a trained W1A1 network to a packed model (docs/packed-format.md):
// binary weights as sign bits with their per-channel scale, every BatchNorm
// folded into the convolution before it, edge layers in float32.
#pragma once

#include <string>

#include "ctmq/deploy/packed_format.h"
#include "ctmq/model/network.h"

namespace ctmq::deploy {

// Packs `net` (its evaluation-mode function: running BatchNorm statistics).
// `source` names the network file in the header and in errors. Throws
// ctmq::Error naming `source` when the network is not at W1A1 or has no
// recorded input preprocessing (a network file older than format 3). At W1A1
// both block forms are the Bi-Real block (model/resnet.h), which is what the
// packed model computes.
PackedModel pack_network(model::NetworkImpl& net, const std::string& source);

}  // namespace ctmq::deploy
