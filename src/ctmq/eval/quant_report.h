// The per-layer quantization report of a stage (docs/run-directory.md,
// quant_report.json): for every conv/linear weight, how far the quantized
// weights the forward pass uses are from the latent ones, and how many latent
// weights changed sign since the stage this one was initialised from.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ctmq/model/network.h"

namespace ctmq::eval {

constexpr int kQuantReportVersion = 1;

struct LayerQuantReport {
  std::string name;  // parameter name, e.g. "layer1.0.conv1.weight"
  int bits = 32;
  int64_t numel = 0;
  double relative_error = 0;                 // ||W_q - W||_2 / ||W||_2 (0 at 32 bits)
  std::optional<double> sign_flip_fraction;  // none without an init network
};

struct QuantReport {
  std::string stage;
  std::optional<std::string> init_stage;
  quant::BitDepths bits;
  std::vector<LayerQuantReport> layers;
};

// Builds the report of `net`. When `init` is given (the init stage's network),
// sign flips are counted against its tensor of the same name (sign(0) is its
// own sign); a layer missing from `init` or of another shape is a ctmq::Error.
QuantReport make_quant_report(model::NetworkImpl& net, const std::string& stage,
                              model::NetworkImpl* init,
                              const std::optional<std::string>& init_stage);

std::string quant_report_json(const QuantReport& report);

}  // namespace ctmq::eval
