// Fused CPU fake-quantization kernels: each quantizer's forward and backward as
// one pass over memory (at::parallel_for over contiguous float32 data, loops the
// compiler vectorises), instead of the 4-7 ATen passes of the composed versions
// in quantizers.cc. The formulas, their sources and the gradients are those of
// quantizers.h; these are the arithmetic only, with no autograd.
//
// Exactness against the composed versions (tests/quant/fused_kernels_test.cc):
//   - every forward and every grad_x equals the composed result bit for bit
//     (same float operations in the same order: clamp, multiply, add, round half
//     to even, divide), except that a result of zero may differ in sign (the
//     composed round of -0.3 is -0.0, these give +0.0; the values compare equal);
//   - LSQ's step gradient is summed in float64 per block here and pairwise in
//     float32 by ATen: equal to float32 summation accuracy, not bit for bit.
// Rounding is round-half-to-even (torch.round, std::nearbyint in the default
// rounding mode) computed as (v + 1.5 * 2^23) - 1.5 * 2^23, exact for |v| <= 2^22
// (the kernels round only clipped values, |v| <= 255) and vectorisable without
// SSE4.1's roundps. NaN inputs propagate as in the composed versions.
//
// Threads: at::parallel_for (torch::get_num_threads()); results do not depend
// on the thread count (the LSQ step sums are per fixed block, added in order).
#pragma once

#include <torch/torch.h>

#include <utility>

namespace ctmq::quant::fused {

// True when the element-wise kernels below accept `t`: a CPU float32 tensor
// whose elements fill its memory densely, in any order of dimensions (contiguous,
// channels-last, a transposed matrix). Callers fall back to the composed
// version otherwise.
bool applicable(const torch::Tensor& t);
// applicable() and contiguous (default memory format): what the kernels that
// work per row of dim 0 need (binary weight, DoReFa weight, LSQ per channel).
bool applicable_rows(const torch::Tensor& t);
// Both applicable(), of one shape and the same strides: element i of one is
// element i of the other in memory order (a gradient and its saved input).
bool applicable_pair(const torch::Tensor& a, const torch::Tensor& b);

// In every function below: REQUIRES applicable() of the input, applicable_pair()
// of (grad, input), applicable_rows() where a function works per row, `grad`
// has x's shape, and 1 <= bits <= 8 (CTMQ_ASSERT). Results are new float32
// tensors of x's shape and strides.

// Signed activation, k >= 2: round(h clip(x, -1, 1) + h) / h - 1, h = (2^k - 1) / 2
// (= 2 q_k((clip(x, -1, 1) + 1) / 2) - 1); k = 1: +1 for x >= 0, -1 otherwise.
torch::Tensor signed_activation_forward(const torch::Tensor& x, int bits);
// k >= 2: grad * 1{|x| <= 1}; k = 1: grad * max(0, 2 - 2|x|) (ApproxSign).
// Also the binary weight's backward (grad * 1{-1 <= W <= 1}) with bits = 2.
torch::Tensor signed_activation_backward(const torch::Tensor& grad, const torch::Tensor& x,
                                         int bits);

// Unsigned activation: round(n clip(x, 0, 1)) / n, n = 2^k - 1.
torch::Tensor unsigned_activation_forward(const torch::Tensor& x, int bits);
// grad * 1{0 <= x <= 1}.
torch::Tensor unsigned_activation_backward(const torch::Tensor& grad, const torch::Tensor& x);

// Binary weight: alpha[c] * (+1 for W >= 0, -1 otherwise) for W of shape [C, ...];
// alpha is float32 with C elements (any shape, e.g. [C, 1, 1, 1]).
torch::Tensor binary_weight_forward(const torch::Tensor& w, const torch::Tensor& alpha);

// DoReFa weight, k >= 2 (quantizers.h, dorefa_weight), from t = tanh(W)
// (the caller runs torch::tanh: ATen's vectorised tanh, so t is the composed
// version's t). One row (per tensor) or one per output channel (per_channel,
// along dim 0 of a t with dim >= 1); per row r: m_r = max |t|, d_r = 2 max(m_r, 1e-12), and
//   y = 2 round(n (t / d_r + 1/2)) / n - 1,  n = 2^k - 1.
// Returns {y, m} (m: float32 [rows]). A NaN in a row makes m_r and that row's y NaN.
// REQUIRES: 2 <= bits <= 8, t.numel() > 0.
std::pair<torch::Tensor, torch::Tensor> dorefa_weight_forward(const torch::Tensor& t, int bits,
                                                              bool per_channel);
// Gradient with respect to t (tanh's backward is left to the caller,
// torch::tanh_backward), as autograd differentiates the composed version:
//   g2 = 2 grad;  grad_t = g2 / d_r + [|t| = m_r] sgn(t) G_r / count_r, where
//   G_r = 2 sum_row(-g2 (t / d_r) / d_r) if m_r >= 1e-12 (else 0),
//   count_r = the number of elements of row r tied at the maximum.
// The row sums run through ATen's sum over the same tensor the composed
// version's broadcast reduction sums, so they are the same floats.
// `max_abs` is the forward's m; per_channel as in the forward.
torch::Tensor dorefa_weight_backward(const torch::Tensor& grad, const torch::Tensor& t,
                                     const torch::Tensor& max_abs, bool per_channel);

// LSQ: s round(clip(v / s, -Q_N, Q_P)); `step` is float32 with 1 element (per
// tensor) or v.size(0) elements (per channel along dim 0), any shape.
torch::Tensor lsq_forward(const torch::Tensor& v, const torch::Tensor& step, int64_t qn,
                          int64_t qp);
// {grad_v, grad_step}: grad_v = grad * 1{-Q_N <= v/s <= Q_P}; grad_step has
// step's shape, grad_scale * sum(grad * (round(v/s) - v/s inside, -Q_N below,
// Q_P above)) over the elements sharing each step (quantizers.h, lsq_quantize).
std::pair<torch::Tensor, torch::Tensor> lsq_backward(const torch::Tensor& grad,
                                                     const torch::Tensor& v,
                                                     const torch::Tensor& step, int64_t qn,
                                                     int64_t qp, double grad_scale);

}  // namespace ctmq::quant::fused
