// The packed binary model file (docs/packed-format.md, version 1): what a
// W1A1 stage becomes for deployment, and its encoding. This file knows bytes
// and names only; packed_export.h fills it from a trained network and
// packed_resnet.h runs it.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ctmq/deploy/binary_conv.h"
#include "ctmq/model/network.h"

namespace ctmq::deploy {

constexpr uint32_t kPackedFormatVersion = 1;

// Bit-packed filters: words in the order of deploy/binary_conv.h.
struct BitTensor {
  std::vector<int64_t> shape;  // [out_channels, words per filter]
  std::vector<uint64_t> words;
};

struct PackedModel {
  // architecture, width, num_classes, in_channels, preprocessing (mean and std
  // per input channel) and quant.activation (the trained quantizer, informational).
  model::ModelOptions options;
  InputCoding input_coding = InputCoding::kSigned;
  std::string ctmq_version;
  std::string source;                           // the network file it was exported from
  std::map<std::string, torch::Tensor> floats;  // float32, contiguous, on the CPU
  std::map<std::string, BitTensor> bits;
};

// The file's bytes: header, 64-aligned tensors, sealed footer.
std::string encode_packed(const PackedModel& model);

// Parses bytes read from `path`. Throws ctmq::Error naming `path` and what is
// wrong: bad or missing footer, CRC-32 mismatch, a newer version, a malformed
// header, a tensor outside the data or of the wrong byte count.
PackedModel decode_packed(const std::string& bytes, const std::string& path);

// Atomic write (common/atomic_file.h) and read + decode; errors name `path`.
void write_packed(const PackedModel& model, const std::string& path);
PackedModel read_packed(const std::string& path);

}  // namespace ctmq::deploy
