#include "ctmq/eval/quant_report.h"

#include <nlohmann/json.hpp>

#include "ctmq/common/error.h"
#include "ctmq/model/weights_io.h"

namespace ctmq::eval {

QuantReport make_quant_report(model::NetworkImpl& net, const std::string& stage,
                              model::NetworkImpl* init,
                              const std::optional<std::string>& init_stage) {
  torch::NoGradGuard no_grad;
  QuantReport report;
  report.stage = stage;
  report.init_stage = init_stage;
  report.bits = net.bit_depths();
  torch::OrderedDict<std::string, torch::Tensor> init_params;
  if (init) init_params = init->named_parameters();
  for (const model::QuantizedLayerView& view : model::quantized_layers(net)) {
    LayerQuantReport layer;
    layer.name = view.name + ".weight";
    layer.bits = view.bits;
    torch::Tensor latent = view.latent_weight.detach().to(torch::kCPU, torch::kFloat64);
    torch::Tensor quantized = view.quantized_weight.detach().to(torch::kCPU, torch::kFloat64);
    layer.numel = latent.numel();
    if (view.bits != quant::kFullPrecisionBits) {
      const double norm = latent.norm().item<double>();
      layer.relative_error = norm > 0 ? (quantized - latent).norm().item<double>() / norm : 0.0;
    }
    if (init) {
      const torch::Tensor* previous = init_params.find(layer.name);
      CTMQ_CHECK(previous != nullptr, "quant report of stage "
                                          << stage << ": layer " << layer.name
                                          << " is missing from the init stage's network");
      CTMQ_CHECK(previous->sizes() == latent.sizes(),
                 "quant report of stage " << stage << ": layer " << layer.name << " has shape "
                                          << latent.sizes() << " but " << previous->sizes()
                                          << " in the init stage's network");
      torch::Tensor flips =
          torch::sign(latent).ne(torch::sign(previous->detach().to(torch::kCPU, torch::kFloat64)));
      layer.sign_flip_fraction =
          static_cast<double>(flips.sum().item<int64_t>()) / static_cast<double>(layer.numel);
    }
    report.layers.push_back(std::move(layer));
  }
  return report;
}

std::string quant_report_json(const QuantReport& report) {
  nlohmann::json j;
  j["version"] = kQuantReportVersion;
  j["stage"] = report.stage;
  j["init_stage"] = report.init_stage ? nlohmann::json(*report.init_stage) : nlohmann::json();
  j["w_bits"] = report.bits.weight;
  j["a_bits"] = report.bits.activation;
  j["layers"] = nlohmann::json::array();
  for (const LayerQuantReport& l : report.layers) {
    j["layers"].push_back(
        {{"name", l.name},
         {"bits", l.bits},
         {"numel", l.numel},
         {"relative_error", l.relative_error},
         {"sign_flip_fraction",
          l.sign_flip_fraction ? nlohmann::json(*l.sign_flip_fraction) : nlohmann::json()}});
  }
  return j.dump(2) + "\n";
}

}  // namespace ctmq::eval
