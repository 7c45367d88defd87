#include "ctmq/quant/layer_quantizer.h"

#include <algorithm>
#include <cmath>

#include "ctmq/common/error.h"
#include "ctmq/quant/quantizers.h"

namespace ctmq::quant {

void LayerQuantizer::reset(torch::nn::Module& owner, const QuantOptions& options,
                           int64_t out_channels, bool quantize_input) {
  options_ = options;
  quantize_input_ = quantize_input;
  weight_step_ = torch::Tensor();
  input_step_ = torch::Tensor();
  input_clip_ = torch::Tensor();
  input_step_ready_ = false;
  if (options_.weight == WeightQuantizer::kLsq) {
    const int64_t steps =
        options_.weight_granularity == Granularity::kPerChannel ? out_channels : 1;
    weight_step_ = owner.register_parameter("weight_step", torch::zeros({steps}));
  }
  if (quantize_input_ && options_.activation == ActivationQuantizer::kLsq) {
    input_step_ = owner.register_parameter("input_step", torch::zeros({1}));
  }
  if (quantize_input_ && options_.activation == ActivationQuantizer::kPact) {
    input_clip_ = owner.register_parameter("input_clip", torch::ones({1}));
  }
}

void LayerQuantizer::set_bit_depths(BitDepths bits, const torch::Tensor& weight) {
  const bool changed = bits != bits_;
  bits_ = bits;
  if (!changed) return;
  torch::NoGradGuard no_grad;
  if (weight_step_.defined()) {
    if (bits_.weight >= 2 && bits_.weight <= kMaxQuantizedBits) {
      weight_step_.copy_(lsq_initial_step(weight, bits_.weight, options_.weight_granularity));
    } else {
      weight_step_.zero_();
    }
  }
  if (input_step_.defined()) {
    input_step_.zero_();
    input_step_ready_ = false;
  }
}

torch::Tensor LayerQuantizer::weight(const torch::Tensor& w) const {
  const int k = bits_.weight;
  if (k == kFullPrecisionBits) return w;
  if (k == 1) return binary_weight(w);
  if (options_.weight == WeightQuantizer::kLsq) {
    const int64_t per_step = w.numel() / weight_step_.numel();
    return lsq_quantize(w, weight_step_, k, lsq_grad_scale(per_step, k));
  }
  return dorefa_weight(w, k, options_.weight_granularity);
}

torch::Tensor LayerQuantizer::input(const torch::Tensor& x, bool training) {
  const int k = bits_.activation;
  if (!quantize_input_) return x;
  if (options_.activation == ActivationQuantizer::kPact) {
    if (k == kFullPrecisionBits && !options_.full_precision_limit) return x;
    return pact_activation(x, input_clip_, k);
  }
  if (k == kFullPrecisionBits) {
    return options_.full_precision_limit ? activation_limit(x, options_.activation) : x;
  }
  switch (options_.activation) {
    case ActivationQuantizer::kSigned:
      return signed_activation(x, k);
    case ActivationQuantizer::kUnsigned:
      return unsigned_activation(x, k);
    case ActivationQuantizer::kLsq:
    case ActivationQuantizer::kPact:
      break;
  }
  if (k == 1) return signed_activation(x, 1);
  if (!input_step_ready_) {
    if (input_step_.item<float>() > 0) {
      input_step_ready_ = true;  // loaded from a checkpoint
    } else {
      CTMQ_CHECK(training,
                 "LSQ input step of a layer is not initialised; run one training "
                 "batch (or load a checkpoint at these bit depths) before evaluating");
      torch::NoGradGuard no_grad;
      if (rank_sum_) {
        // LSQ's 2 mean|x| / sqrt(Q_P) over the global batch.
        std::vector<torch::Tensor> stats = {
            torch::stack({x.abs().sum(torch::kDouble),
                          torch::scalar_tensor(static_cast<double>(x.numel()),
                                               x.options().dtype(torch::kDouble))})};
        rank_sum_(stats);
        const double mean_abs = (stats[0][0] / stats[0][1]).item<double>();
        input_step_.fill_(
            std::max(1e-8, 2.0 * mean_abs / std::sqrt(static_cast<double>(lsq_qp(k)))));
      } else {
        input_step_.copy_(lsq_initial_step(x, k, Granularity::kPerTensor));
      }
      input_step_ready_ = true;
    }
  }
  const int64_t features = x.dim() > 0 && x.size(0) > 0 ? x.numel() / x.size(0) : 1;
  return lsq_quantize(x, input_step_, k, lsq_grad_scale(features, k));
}

void set_rank_sum(torch::nn::Module& net, const RankSum& sum) {
  if (auto* self = dynamic_cast<QuantizedLayer*>(&net)) self->set_rank_sum(sum);
  for (const auto& m : net.modules(/*include_self=*/false))
    if (auto* layer = dynamic_cast<QuantizedLayer*>(m.get())) layer->set_rank_sum(sum);
}

}  // namespace ctmq::quant
