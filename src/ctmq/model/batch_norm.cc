#include "ctmq/model/batch_norm.h"

#include "ctmq/common/error.h"
#include "ctmq/quant/layer_quantizer.h"

namespace ctmq::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::vector<int64_t> channel_view(int64_t c) { return {1, c, 1, 1}; }

// y = (x - mean) * invstd * weight + bias with global statistics; backward
// sums (sum dy, sum dy * x_hat) over ranks through the reducer.
struct SyncBatchNormFn : public torch::autograd::Function<SyncBatchNormFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               const torch::Tensor& mean, const torch::Tensor& invstd,
                               double global_count, const StatsReducer* reducer) {
    const int64_t c = x.size(1);
    // y = x * scale + shift in one pass, as torch's own CPU kernel computes it.
    const torch::Tensor scale = weight.defined() ? invstd * weight : invstd;  // [C], float
    torch::Tensor shift = -mean * scale;
    if (bias.defined()) shift.add_(bias);
    torch::Tensor y = torch::addcmul(shift.view(channel_view(c)), x, scale.view(channel_view(c)));
    ctx->save_for_backward({x, weight, mean, invstd});
    ctx->saved_data["count"] = global_count;
    ctx->saved_data["reducer"] = reinterpret_cast<int64_t>(reducer);
    ctx->saved_data["has_bias"] = bias.defined();
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& weight = saved[1];
    const torch::Tensor& mean = saved[2];
    const torch::Tensor& invstd = saved[3];
    const double count = ctx->saved_data["count"].toDouble();
    const auto* reducer = reinterpret_cast<const StatsReducer*>(ctx->saved_data["reducer"].toInt());
    const int64_t c = x.size(1);
    // In x's layout: the fused kernel below takes its fast path only when
    // the gradient and x share one memory format.
    const torch::Tensor g = grad[0].contiguous(x.suggest_memory_format());
    // torch's fused kernel gives the local sums in one pass (double
    // accumulators on CPU): its grad_weight output is sum dy * x_hat and its
    // grad_bias output sum dy, with x_hat from the global mean and invstd.
    const auto local = torch::native_batch_norm_backward(
        g, x, torch::Tensor(), torch::Tensor(), torch::Tensor(), mean, invstd, /*train=*/true,
        /*eps=*/0.0, {false, true, true});
    const torch::Tensor& local_sum_dy_xhat = std::get<1>(local);
    const torch::Tensor& local_sum_dy = std::get<2>(local);
    std::vector<torch::Tensor> sums = {
        torch::cat({local_sum_dy.to(torch::kDouble), local_sum_dy_xhat.to(torch::kDouble)})};
    (*reducer)(sums);
    const torch::Tensor global = sums[0].to(x.scalar_type());
    const torch::Tensor mean_dy = global.slice(0, 0, c).div(count);
    const torch::Tensor mean_dy_xhat = global.slice(0, c, 2 * c).div(count);
    const torch::Tensor scale = weight.defined() ? invstd * weight : invstd;
    // grad_x = (g - mean_dy - x_hat * mean_dy_xhat) * scale
    //        = g * scale - mean_dy * scale - (x - mean) * (mean_dy_xhat * invstd * scale)
    torch::Tensor grad_x =
        torch::addcmul((-mean_dy * scale).view(channel_view(c)), g, scale.view(channel_view(c)));
    grad_x.addcmul_(x - mean.view(channel_view(c)),
                    (-mean_dy_xhat * invstd * scale).view(channel_view(c)));
    torch::Tensor grad_weight, grad_bias;
    if (weight.defined()) grad_weight = local_sum_dy_xhat.to(weight.scalar_type());
    if (ctx->saved_data["has_bias"].toBool()) grad_bias = local_sum_dy.to(x.scalar_type());
    return {grad_x,          grad_weight,     grad_bias,      torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

BatchNorm2dImpl::BatchNorm2dImpl(torch::nn::BatchNormOptions options_)
    : options(std::move(options_)) {
  reset();
}

void BatchNorm2dImpl::reset() {
  const int64_t c = options.num_features();
  if (options.affine()) {
    weight = register_parameter("weight", torch::ones({c}));
    bias = register_parameter("bias", torch::zeros({c}));
  } else {
    weight = torch::Tensor();
    bias = torch::Tensor();
  }
  if (options.track_running_stats()) {
    running_mean = register_buffer("running_mean", torch::zeros({c}));
    running_var = register_buffer("running_var", torch::ones({c}));
    num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::kLong));
  } else {
    running_mean = running_var = num_batches_tracked = torch::Tensor();
  }
}

void BatchNorm2dImpl::reset_running_stats() {
  if (!options.track_running_stats()) return;
  torch::NoGradGuard no_grad;
  running_mean.zero_();
  running_var.fill_(1);
  num_batches_tracked.zero_();
}

torch::Tensor BatchNorm2dImpl::forward(const torch::Tensor& x) {
  CTMQ_CHECK(x.dim() == 4 && x.size(1) == options.num_features(),
             "BatchNorm2d(" << options.num_features() << ") got an input of shape " << x.sizes()
                            << "; expected [N, " << options.num_features() << ", H, W]");
  // Exactly torch::nn::BatchNormImplBase::forward's bookkeeping.
  double momentum = options.momentum().has_value() ? options.momentum().value() : 0.0;
  if (is_training() && options.track_running_stats()) {
    num_batches_tracked += 1;
    if (!options.momentum().has_value()) {
      momentum = 1.0 / num_batches_tracked.item<double>();
    }
  }
  const bool use_batch_stats = is_training() || !options.track_running_stats();
  if (use_batch_stats && reducer_) return synchronized_forward(x, momentum);
  return torch::batch_norm(x, weight, bias, running_mean, running_var, use_batch_stats, momentum,
                           options.eps(), at::globalContext().userEnabledCuDNN());
}

torch::Tensor BatchNorm2dImpl::synchronized_forward(const torch::Tensor& x, double momentum) {
  const int64_t c = x.size(1);
  torch::Tensor mean, invstd;
  double count = 0;
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor xd = x.detach();
    const double local_count = static_cast<double>(x.numel() / c);
    // torch's fused per-channel kernel (two passes, double accumulators on
    // CPU): local mean and biased variance; their sums over ranks in float64
    // (count, sum, sum of squares = n (var + mean^2)) are exact enough that
    // the global variance loses nothing to cancellation but the float32
    // rounding of each rank's mean and variance.
    const auto [local_mean, local_var] =
        torch::batch_norm_update_stats(xd, torch::Tensor(), torch::Tensor(), 0.0);
    const torch::Tensor mean_l = local_mean.to(torch::kDouble);
    std::vector<torch::Tensor> stats = {torch::cat(
        {torch::full({1}, local_count, xd.options().dtype(torch::kDouble)), mean_l * local_count,
         (local_var.to(torch::kDouble) + mean_l.square()) * local_count})};
    reducer_(stats);
    const torch::Tensor& s = stats[0];
    count = s[0].item<double>();
    CTMQ_CHECK(count > 1,
               "BatchNorm2d: a training batch needs more than one value per channel "
               "over all ranks; got "
                   << count << "; use a larger batch");
    const torch::Tensor mean_d = s.slice(0, 1, 1 + c) / count;
    const torch::Tensor var_d =
        (s.slice(0, 1 + c, 1 + 2 * c) / count - mean_d.square()).clamp_min(0);
    mean = mean_d.to(x.scalar_type());
    invstd = (var_d + options.eps()).rsqrt().to(x.scalar_type());
    if (options.track_running_stats()) {
      running_mean.mul_(1 - momentum).add_(mean_d.to(running_mean.scalar_type()), momentum);
      running_var.mul_(1 - momentum)
          .add_((var_d * (count / (count - 1))).to(running_var.scalar_type()), momentum);
    }
  }
  return SyncBatchNormFn::apply(x, weight, bias, mean, invstd, count, &reducer_);
}

void BatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "ctmq::BatchNorm2d(" << options.num_features() << ", eps=" << options.eps()
         << ", momentum=";
  if (options.momentum().has_value()) {
    stream << options.momentum().value();
  } else {
    stream << "None";
  }
  stream << ", affine=" << std::boolalpha << options.affine()
         << ", track_running_stats=" << options.track_running_stats()
         << (reducer_ ? ", synchronized" : "") << ")";
}

void set_stats_reducer(torch::nn::Module& net, StatsReducer reducer) {
  if (auto* self = dynamic_cast<BatchNorm2dImpl*>(&net)) self->set_stats_reducer(reducer);
  for (const auto& m : net.modules(/*include_self=*/false)) {
    if (auto* bn = dynamic_cast<BatchNorm2dImpl*>(m.get())) bn->set_stats_reducer(reducer);
  }
}

}  // namespace ctmq::model
