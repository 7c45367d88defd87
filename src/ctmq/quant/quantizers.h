// Quantizer functions with their straight-through gradients, exactly as
// method.md states them. All are differentiable torch ops (custom autograd
// functions), so they sit on the training hot path without per-element loops.
// On CPU float32 contiguous tensors the DoReFa and binary weight, signed,
// unsigned and LSQ quantizers run fused one-pass kernels (fused_kernels.h) forward and backward;
// anything else (CUDA, other dtypes, non-contiguous) runs the composed ATen
// passes, which stay callable as ctmq::quant::reference:: (the kernels' oracle).
//
// Conventions shared by every function here:
//   - `bits` is k in 1..8; kFullPrecisionBits (32) returns the input unchanged.
//   - n = 2^k - 1; q_k(x) = round(n x) / n with round-half-to-even (torch.round).
//   - Binary outputs map x >= 0 to +1 and x < 0 to -1, so there are always
//     exactly two levels (sign(0) = 0 would make a third).
//   - Per-channel means along dim 0 (the output channel of a conv/linear weight).
#pragma once

#include <torch/torch.h>

#include "ctmq/quant/quant_options.h"

namespace ctmq::quant {

// q_k(x) for x in [0, 1] (no clipping); backward: identity.
torch::Tensor uniform_quantize(const torch::Tensor& x, int bits);

// DoReFa weights, k >= 2: t = tanh(W), x = t / (2 max|t|) + 1/2, W_q = 2 q_k(x) - 1.
// max|t| is over the whole tensor (kPerTensor) or per output channel
// (kPerChannel); gradients flow through tanh and max, q_k is straight-through.
// REQUIRES: bits >= 2 or bits == 32.
torch::Tensor dorefa_weight(const torch::Tensor& w, int bits, Granularity granularity);

// Binary weights (XNOR / Bi-Real): alpha * sign(W), alpha = mean |W| per output
// channel (detached). Backward: grad_W = grad * 1{-1 <= W <= 1}, the gradient
// of clamp(W, -1, 1) (Bi-Real's reference code; alpha is not in the gradient).
torch::Tensor binary_weight(const torch::Tensor& w);

// Unsigned (DoReFa) activations: q_k(clip(x, 0, 1)); backward 1{0 <= x <= 1}.
torch::Tensor unsigned_activation(const torch::Tensor& x, int bits);

// Signed activations: 2 q_k((clip(x, -1, 1) + 1) / 2) - 1, backward 1{|x| <= 1}.
// At k = 1 this is sign(x), with the ApproxSign backward
//   2 + 2x on [-1, 0), 2 - 2x on [0, 1), 0 elsewhere  (= max(0, 2 - 2|x|)).
torch::Tensor signed_activation(const torch::Tensor& x, int bits);

// The full-precision limit of each activation quantizer as k grows: the
// nonlinearity of a full-precision stage, so that the full-precision network
// and every W_kA_k step are one graph (method.md, "One network for every stage").
//   kSigned, kLsq:  hardtanh(x) = clip(x, -1, 1)   (Bi-Real / IR-Net real-valued nets)
//   kUnsigned:      clip(x, 0, 1)
//   kPact:          use pact_activation(x, alpha, kFullPrecisionBits)
// Backward: the gradient of the clip (torch.hardtanh's: 1 strictly inside the
// range, 0 outside and on its bounds).
torch::Tensor activation_limit(const torch::Tensor& x, ActivationQuantizer kind);

// Signed activations with a learned range (PACT, Choi et al. 2018, made
// symmetric so that it is valid down to k = 1):
//   y = clip(x, -alpha, alpha)                 (bits = 32: the result)
//   A_q = alpha * signed_activation(y / alpha, bits)
// `alpha` is a float [1] parameter > 0. Gradients: through y, 1{|x| <= alpha}
// for x; for alpha, sign(x) where |x| > alpha (PACT's clip gradient) plus the
// straight-through term A_q/alpha - y/alpha inside (the quantization error, as
// in LSQ). At k = 1, A_q = alpha * sign(x) with ApproxSign on y / alpha.
torch::Tensor pact_activation(const torch::Tensor& x, const torch::Tensor& alpha, int bits);

// LSQ bounds for signed k-bit values: Q_N = 2^(k-1), Q_P = 2^(k-1) - 1
// (2^k levels). REQUIRES: 2 <= bits <= 8.
int64_t lsq_qn(int bits);
int64_t lsq_qp(int bits);

// Learned step size (Esser et al. 2020): v_q = s * round(clip(v / s, -Q_N, Q_P)).
// `step` is float [1] (per tensor) or [v.size(0)] (per channel, along dim 0),
// and must be > 0. Backward:
//   grad_v = grad * 1{-Q_N <= v/s <= Q_P}
//   grad_s = grad_scale * sum(grad * (round(v/s) - v/s   inside,
//                                     -Q_N               if v/s < -Q_N,
//                                     Q_P                if v/s > Q_P))
// summed over the elements sharing that step.
// REQUIRES: 2 <= bits <= 8 (at 1 bit LSQ is undefined: callers use the binary
// quantizers).
torch::Tensor lsq_quantize(const torch::Tensor& v, const torch::Tensor& step, int bits,
                           double grad_scale);

// LSQ's gradient scale g = 1 / sqrt(elements_per_step * Q_P).
double lsq_grad_scale(int64_t elements_per_step, int bits);

// LSQ's initial step 2 mean|v| / sqrt(Q_P): shape [1] (kPerTensor) or
// [v.size(0)] (kPerChannel). Detached. A tensor of zeros gets a tiny positive step.
torch::Tensor lsq_initial_step(const torch::Tensor& v, int bits, Granularity granularity);

// The functions above that have fused CPU kernels, always composed of ATen
// passes (the implementation before fused_kernels.h): same contracts, same
// autograd. Forward and grad_x equal the fused versions bit for bit (up to the
// sign of zero; DoReFa's gradient for finite weights); LSQ's step gradient to
// float32 summation accuracy.
namespace reference {
torch::Tensor dorefa_weight(const torch::Tensor& w, int bits, Granularity granularity);
torch::Tensor binary_weight(const torch::Tensor& w);
torch::Tensor unsigned_activation(const torch::Tensor& x, int bits);
torch::Tensor signed_activation(const torch::Tensor& x, int bits);
torch::Tensor lsq_quantize(const torch::Tensor& v, const torch::Tensor& step, int bits,
                           double grad_scale);
}  // namespace reference

}  // namespace ctmq::quant
