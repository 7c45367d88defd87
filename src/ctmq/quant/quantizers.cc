#include "ctmq/quant/quantizers.h"

#include <cmath>
#include <vector>

#include "ctmq/common/error.h"
#include "ctmq/quant/bit_depths.h"
#include "ctmq/quant/fused_kernels.h"

namespace ctmq::quant {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

double levels(int64_t bits) { return static_cast<double>((int64_t{1} << bits) - 1); }

// q_k without clipping; the one rounding formula every quantizer shares.
torch::Tensor round_to_levels(const torch::Tensor& x, double n) {
  return x.mul(n).round_().div_(n);
}

// +1 for x >= 0, -1 otherwise, in x's dtype.
torch::Tensor binary_sign(const torch::Tensor& x) {
  return x.ge(0).to(x.scalar_type()).mul_(2).sub_(1);
}

// Shape [C, 1, 1, ...] that broadcasts a per-channel vector along dim 0 of `like`.
std::vector<int64_t> channel_shape(const torch::Tensor& like) {
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = like.size(0);
  return shape;
}

torch::Tensor mean_abs_per_channel(const torch::Tensor& w) {
  return w.abs().reshape({w.size(0), -1}).mean(1).view(channel_shape(w));
}

struct UniformSte : public torch::autograd::Function<UniformSte> {
  static torch::Tensor forward(AutogradContext*, const torch::Tensor& x, double n) {
    return round_to_levels(x, n);
  }
  static variable_list backward(AutogradContext*, variable_list grad) {
    return {grad[0], torch::Tensor()};
  }
};

// Each function below takes `fused`: true runs fused_kernels.h where it
// applies (CPU float32 dense tensors; a gradient with its input's strides),
// false always runs the composed ATen passes (the reference namespace: the
// oracle of the fused kernels).
bool use_fused(AutogradContext* ctx, const torch::Tensor& x) {
  return ctx->saved_data["fused"].toBool() && fused::applicable(x);
}
bool use_fused(AutogradContext* ctx, const torch::Tensor& grad, const torch::Tensor& x) {
  return ctx->saved_data["fused"].toBool() && fused::applicable_pair(grad, x);
}

struct UnsignedActivationFn : public torch::autograd::Function<UnsignedActivationFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, int64_t bits,
                               bool fused) {
    ctx->save_for_backward({x});
    ctx->saved_data["fused"] = fused;
    ctx->saved_data["bits"] = bits;
    if (use_fused(ctx, x)) return fused::unsigned_activation_forward(x, bits);
    const double n = levels(bits);
    return x.clamp(0, 1).mul_(n).round_().div_(n);  // q_k(clip(x, 0, 1)), one allocation
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const torch::Tensor x = ctx->get_saved_variables()[0];
    if (use_fused(ctx, grad[0], x)) {
      return {fused::unsigned_activation_backward(grad[0], x), torch::Tensor(), torch::Tensor()};
    }
    const torch::Tensor inside = x.ge(0).logical_and_(x.le(1));
    return {grad[0] * inside.to(grad[0].scalar_type()), torch::Tensor(), torch::Tensor()};
  }
};

struct SignedActivationFn : public torch::autograd::Function<SignedActivationFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, int64_t bits,
                               bool fused) {
    ctx->save_for_backward({x});
    ctx->saved_data["bits"] = bits;
    ctx->saved_data["fused"] = fused;
    if (use_fused(ctx, x)) return fused::signed_activation_forward(x, bits);
    if (bits == 1) return binary_sign(x);
    // 2 round(n (c + 1) / 2) / n - 1 = round(h c + h) / h - 1 with h = n / 2:
    // five in-place passes over one allocation (this is on the training hot path).
    const double h = levels(bits) / 2;
    return x.clamp(-1, 1).mul_(h).add_(h).round_().div_(h).sub_(1);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const torch::Tensor x = ctx->get_saved_variables()[0];
    const int64_t bits = ctx->saved_data["bits"].toInt();
    if (use_fused(ctx, grad[0], x)) {
      return {fused::signed_activation_backward(grad[0], x, bits), torch::Tensor(),
              torch::Tensor()};
    }
    torch::Tensor local;
    if (bits == 1) {
      local = x.abs().mul_(-2).add_(2).clamp_min_(0);  // ApproxSign: max(0, 2 - 2|x|)
    } else {
      local = x.abs().le(1).to(grad[0].scalar_type());
    }
    return {grad[0] * local, torch::Tensor(), torch::Tensor()};
  }
};

struct BinaryWeightFn : public torch::autograd::Function<BinaryWeightFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& w, bool fused) {
    ctx->save_for_backward({w});
    ctx->saved_data["fused"] = fused;
    if (ctx->saved_data["fused"].toBool() && fused::applicable_rows(w)) {
      return fused::binary_weight_forward(w, mean_abs_per_channel(w));
    }
    return binary_sign(w).mul_(mean_abs_per_channel(w));
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const torch::Tensor w = ctx->get_saved_variables()[0];
    // 1{|W| <= 1}: the signed activation's k >= 2 mask.
    if (use_fused(ctx, grad[0], w)) {
      return {fused::signed_activation_backward(grad[0], w, 2), torch::Tensor()};
    }
    return {grad[0] * w.abs().le(1).to(grad[0].scalar_type()), torch::Tensor()};
  }
};

// DoReFa weights on the fused kernels (CPU float32 contiguous W only): tanh
// by ATen, the rest one pass forward and two backward, in place of the ~20
// small ATen ops (and autograd nodes) per layer of the composed version.
struct DoReFaWeightFn : public torch::autograd::Function<DoReFaWeightFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& w, int64_t bits,
                               bool per_channel) {
    const torch::Tensor t = torch::tanh(w);
    auto [y, max_abs] = fused::dorefa_weight_forward(t, static_cast<int>(bits), per_channel);
    ctx->save_for_backward({t, max_abs});
    ctx->saved_data["per_channel"] = per_channel;
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& t = saved[0];
    const torch::Tensor grad_t = fused::dorefa_weight_backward(
        grad[0].contiguous(), t, saved[1], ctx->saved_data["per_channel"].toBool());
    return {at::tanh_backward(grad_t, t), torch::Tensor(), torch::Tensor()};
  }
};

// `step` reshaped to broadcast against v: a scalar for one step, [C,1,..] per channel.
torch::Tensor broadcast_step(const torch::Tensor& step, const torch::Tensor& v) {
  if (step.numel() == 1) return step.reshape({});
  return step.view(channel_shape(v));
}

// What fused::lsq_forward/backward need of the step beyond use_fused(): float32,
// and one step, or one per row of a contiguous v (they work per row then).
bool lsq_step_fusable(const torch::Tensor& v, const torch::Tensor& step) {
  return step.scalar_type() == torch::kFloat32 && (step.numel() == 1 || v.is_contiguous());
}

struct LsqFn : public torch::autograd::Function<LsqFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& v,
                               const torch::Tensor& step, int64_t qn, int64_t qp, double grad_scale,
                               bool fused) {
    ctx->save_for_backward({v, step});
    ctx->saved_data["qn"] = qn;
    ctx->saved_data["qp"] = qp;
    ctx->saved_data["grad_scale"] = grad_scale;
    ctx->saved_data["fused"] = fused;
    if (use_fused(ctx, v) && lsq_step_fusable(v, step)) {
      return fused::lsq_forward(v, step, qn, qp);
    }
    const torch::Tensor s = broadcast_step(step, v);
    return v.div(s).clamp_(-qn, qp).round_().mul_(s);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& v = saved[0];
    const torch::Tensor& step = saved[1];
    const double qn = static_cast<double>(ctx->saved_data["qn"].toInt());
    const double qp = static_cast<double>(ctx->saved_data["qp"].toInt());
    const double grad_scale = ctx->saved_data["grad_scale"].toDouble();
    const torch::Tensor& g = grad[0];
    if (use_fused(ctx, g, v) && lsq_step_fusable(v, step)) {
      auto [grad_v, grad_step] = fused::lsq_backward(g, v, step, static_cast<int64_t>(qn),
                                                     static_cast<int64_t>(qp), grad_scale);
      return {grad_v,          grad_step,       torch::Tensor(),
              torch::Tensor(), torch::Tensor(), torch::Tensor()};
    }
    const torch::Tensor vs = v.div(broadcast_step(step, v));
    const torch::Tensor below = vs.lt(-qn);
    const torch::Tensor above = vs.gt(qp);
    const torch::Tensor inside = below.logical_or(above).logical_not_();
    const torch::Tensor grad_v = g * inside.to(g.scalar_type());
    torch::Tensor per_element = vs.round().sub_(vs);
    per_element.masked_fill_(below, -qn).masked_fill_(above, qp).mul_(g);
    torch::Tensor grad_step;
    if (step.numel() == 1) {
      grad_step = per_element.sum().mul_(grad_scale).view_as(step);
    } else {
      grad_step = per_element.reshape({v.size(0), -1}).sum(1).mul_(grad_scale);
    }
    return {grad_v, grad_step, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

void check_bits(int bits, int lowest) {
  CTMQ_ASSERT(bits == kFullPrecisionBits || (bits >= lowest && bits <= kMaxQuantizedBits));
}

torch::Tensor unsigned_activation_impl(const torch::Tensor& x, int bits, bool fused) {
  check_bits(bits, 1);
  if (bits == kFullPrecisionBits) return x;
  return UnsignedActivationFn::apply(x, static_cast<int64_t>(bits), fused);
}

torch::Tensor signed_activation_impl(const torch::Tensor& x, int bits, bool fused) {
  check_bits(bits, 1);
  if (bits == kFullPrecisionBits) return x;
  return SignedActivationFn::apply(x, static_cast<int64_t>(bits), fused);
}

torch::Tensor lsq_quantize_impl(const torch::Tensor& v, const torch::Tensor& step, int bits,
                                double grad_scale, bool fused) {
  CTMQ_ASSERT(step.numel() == 1 || (v.dim() >= 1 && step.numel() == v.size(0)));
  return LsqFn::apply(v, step, lsq_qn(bits), lsq_qp(bits), grad_scale, fused);
}

}  // namespace

namespace reference {

torch::Tensor binary_weight(const torch::Tensor& w) { return BinaryWeightFn::apply(w, false); }

torch::Tensor unsigned_activation(const torch::Tensor& x, int bits) {
  return unsigned_activation_impl(x, bits, false);
}

torch::Tensor signed_activation(const torch::Tensor& x, int bits) {
  return signed_activation_impl(x, bits, false);
}

torch::Tensor lsq_quantize(const torch::Tensor& v, const torch::Tensor& step, int bits,
                           double grad_scale) {
  return lsq_quantize_impl(v, step, bits, grad_scale, false);
}

}  // namespace reference

torch::Tensor uniform_quantize(const torch::Tensor& x, int bits) {
  check_bits(bits, 1);
  if (bits == kFullPrecisionBits) return x;
  return UniformSte::apply(x, levels(bits));
}

torch::Tensor dorefa_weight(const torch::Tensor& w, int bits, Granularity granularity) {
  check_bits(bits, 2);
  if (bits == kFullPrecisionBits) return w;
  if (fused::applicable_rows(w) && w.numel() > 0 && w.dim() >= 1) {
    return DoReFaWeightFn::apply(w, static_cast<int64_t>(bits),
                                 granularity == Granularity::kPerChannel);
  }
  return reference::dorefa_weight(w, bits, granularity);
}

namespace reference {

torch::Tensor dorefa_weight(const torch::Tensor& w, int bits, Granularity granularity) {
  check_bits(bits, 2);
  if (bits == kFullPrecisionBits) return w;
  const torch::Tensor t = torch::tanh(w);
  torch::Tensor max_abs;
  if (granularity == Granularity::kPerChannel) {
    max_abs = t.abs().reshape({w.size(0), -1}).amax(1).view(channel_shape(w));
  } else {
    max_abs = t.abs().max();
  }
  const torch::Tensor x = t / (2 * max_abs.clamp_min(1e-12)) + 0.5;
  return UniformSte::apply(x, levels(bits)) * 2 - 1;
}

}  // namespace reference

torch::Tensor binary_weight(const torch::Tensor& w) { return BinaryWeightFn::apply(w, true); }

torch::Tensor unsigned_activation(const torch::Tensor& x, int bits) {
  return unsigned_activation_impl(x, bits, true);
}

torch::Tensor signed_activation(const torch::Tensor& x, int bits) {
  return signed_activation_impl(x, bits, true);
}

torch::Tensor activation_limit(const torch::Tensor& x, ActivationQuantizer kind) {
  switch (kind) {
    case ActivationQuantizer::kSigned:
    case ActivationQuantizer::kLsq:
      return torch::hardtanh(x, -1.0, 1.0);
    case ActivationQuantizer::kUnsigned:
      return torch::hardtanh(x, 0.0, 1.0);
    case ActivationQuantizer::kPact:
      break;
  }
  CTMQ_ASSERT(false && "activation_limit: PACT's limit needs its alpha (pact_activation)");
  return x;
}

torch::Tensor pact_activation(const torch::Tensor& x, const torch::Tensor& alpha, int bits) {
  check_bits(bits, 1);
  const torch::Tensor a = alpha.to(x.scalar_type());
  const torch::Tensor y = torch::minimum(torch::maximum(x, -a), a);
  if (bits == kFullPrecisionBits) return y;
  return signed_activation(y / a, bits) * a;
}

int64_t lsq_qn(int bits) {
  CTMQ_ASSERT(bits >= 2 && bits <= kMaxQuantizedBits);
  return int64_t{1} << (bits - 1);
}

int64_t lsq_qp(int bits) {
  CTMQ_ASSERT(bits >= 2 && bits <= kMaxQuantizedBits);
  return (int64_t{1} << (bits - 1)) - 1;
}

torch::Tensor lsq_quantize(const torch::Tensor& v, const torch::Tensor& step, int bits,
                           double grad_scale) {
  return lsq_quantize_impl(v, step, bits, grad_scale, true);
}

double lsq_grad_scale(int64_t elements_per_step, int bits) {
  return 1.0 / std::sqrt(static_cast<double>(elements_per_step) * lsq_qp(bits));
}

torch::Tensor lsq_initial_step(const torch::Tensor& v, int bits, Granularity granularity) {
  torch::NoGradGuard no_grad;
  const double scale = 2.0 / std::sqrt(static_cast<double>(lsq_qp(bits)));
  torch::Tensor mean_abs;
  if (granularity == Granularity::kPerChannel) {
    mean_abs = v.abs().reshape({v.size(0), -1}).mean(1);
  } else {
    mean_abs = v.abs().mean().reshape({1});
  }
  return mean_abs.mul(scale).clamp_min_(1e-8).detach();
}

}  // namespace ctmq::quant
