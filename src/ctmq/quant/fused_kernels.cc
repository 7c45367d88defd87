#include "ctmq/quant/fused_kernels.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "ctmq/common/error.h"

// Built with -ffp-contract=off -fno-trapping-math (CMakeLists.txt, this file
// only). Bit-exactness with the composed ATen passes needs each multiply and
// add rounded on its own: no contraction of c * h + h into a fused
// multiply-add (GCC contracts by default under -std=gnu++17 when the target
// has FMA). no-trapping-math (Clang's default, and how LibTorch is built) lets
// GCC turn the clip's comparisons into vector selects instead of branches; it
// changes no result. (A `#pragma GCC optimize` instead would stop GCC from
// inlining std::fabs and the other functions declared before it.)

// The element-wise loops (the *_span functions below) are compiled twice, for
// AVX2 and for baseline x86-64 (SSE2), and the loader picks the AVX2 clone on a
// CPU that has it (GCC/Clang function multi-versioning): twice the lanes of
// the default build. The same IEEE operations run in each clone (no FMA:
// contraction is off above), so the results are identical bit for bit.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CTMQ_ELEMENTWISE __attribute__((target_clones("avx2", "default")))
#else
#define CTMQ_ELEMENTWISE
#endif

namespace ctmq::quant::fused {
namespace {

constexpr int64_t kGrain = 32768;           // elements per parallel_for task (ATen's GRAIN_SIZE)
constexpr int64_t kSumBlock = 16384;        // elements per partial sum of LSQ's step gradient
constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23

// Round half to even for |v| <= 2^22: adding 1.5 * 2^23 leaves a float whose
// unit in the last place is 1, so the addition itself rounds v (in the default
// rounding mode, as std::nearbyint does). Vectorises with SSE2.
inline float round_half_even(float v) { return (v + kRoundMagic) - kRoundMagic; }

// clip(v, lo, hi) with NaN passing through (both comparisons are false), as
// ATen's clamp.
inline float clip(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

// grad * (keep ? 1 : 0) as the composed version computes it (g * 0 is -0 for
// negative g and NaN for infinite g), written as a bitwise select of g and
// g * 0: GCC otherwise simplifies g * 1 to g and emits a branch per element,
// which mispredicts on random data and does not vectorise.
inline float masked(float g, bool keep) {
  const float dropped = g * 0.0f;
  uint32_t kept_bits, dropped_bits;
  std::memcpy(&kept_bits, &g, sizeof(float));
  std::memcpy(&dropped_bits, &dropped, sizeof(float));
  const uint32_t mask = 0u - static_cast<uint32_t>(keep);
  const uint32_t bits = (kept_bits & mask) | (dropped_bits & ~mask);
  float result;
  std::memcpy(&result, &bits, sizeof(float));
  return result;
}

float levels(int bits) { return static_cast<float>((int64_t{1} << bits) - 1); }

void check_bits(int bits) { CTMQ_ASSERT(bits >= 1 && bits <= 8); }

void check_pair(const torch::Tensor& grad, const torch::Tensor& x) {
  CTMQ_ASSERT(applicable_pair(grad, x));
}

// `values` as a contiguous float32 CPU vector (alpha or step: a few hundred elements).
std::vector<float> small_vector(const torch::Tensor& values) {
  const torch::Tensor c = values.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

// Applies `body(begin, end)` over [0, n) in parallel.
template <typename Body>
void for_range(int64_t n, const Body& body) {
  at::parallel_for(0, n, kGrain, body);
}

// LSQ's forward over one span sharing step s.
CTMQ_ELEMENTWISE void lsq_forward_span(const float* __restrict v, float* __restrict y, int64_t n,
                                       float s, float qn, float qp) {
  for (int64_t i = 0; i < n; ++i) y[i] = round_half_even(clip(v[i] / s, -qn, qp)) * s;
}

// LSQ's backward over one span sharing step s: writes grad_v and returns the
// span's sum of grad * (round(v/s) - v/s | -Q_N | Q_P) in float64, accumulated
// in 8 interleaved lanes (independent, so the loop vectorises) and added in order.
CTMQ_ELEMENTWISE double lsq_backward_span(const float* __restrict g, const float* __restrict v,
                                          float* __restrict gv, int64_t n, float s, float qn,
                                          float qp) {
  double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  auto one = [&](int64_t k, double& lane) {
    const float vs = v[k] / s;
    const bool below = vs < -qn;
    const bool above = vs > qp;
    gv[k] = masked(g[k], !(below || above));
    const float term = below ? -qn : (above ? qp : round_half_even(vs) - vs);
    lane += static_cast<double>(term * g[k]);
  };
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) one(i + j, lanes[j]);
  }
  for (; i < n; ++i) one(i, lanes[0]);
  double sum = 0;
  for (double lane : lanes) sum += lane;
  return sum;
}

// The composed version's clamp_min(max |t|, 1e-12): the bound as a float.
constexpr float kDoReFaMinMax = static_cast<float>(1e-12);

// max |t| over one row, NaN if the row holds a NaN (as ATen's max and amax).
float row_max_abs(const float* __restrict t, int64_t n) {
  float m = 0.0f;
  bool nan = false;
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(t[i]);
    m = a > m ? a : m;
    nan |= a != a;
  }
  return nan ? std::numeric_limits<float>::quiet_NaN() : m;
}

// d_r = 2 clamp_min(m_r, 1e-12), NaN passing through.
inline float dorefa_divisor(float m) { return 2.0f * (m < kDoReFaMinMax ? kDoReFaMinMax : m); }

// The elements autograd's max/amax backward spreads the gradient over: those
// equal to the maximum, or the NaNs when the maximum is NaN.
inline bool tied(float a, float m) { return a == m || (m != m && a != a); }

inline float sgn(float v) { return v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : v * 0.0f); }

// Grain (in rows) so that one parallel task covers about kGrain elements.
int64_t row_grain(int64_t inner) {
  return std::max<int64_t>(1, kGrain / std::max<int64_t>(1, inner));
}

// Signed activation forward over one span, k >= 2: h = (2^k - 1) / 2.
CTMQ_ELEMENTWISE void signed_forward_span(const float* __restrict in, float* __restrict out,
                                          int64_t n, float h) {
  for (int64_t i = 0; i < n; ++i) {
    out[i] = round_half_even(clip(in[i], -1.0f, 1.0f) * h + h) / h - 1.0f;
  }
}

// k = 1: +1 for x >= 0, -1 otherwise.
CTMQ_ELEMENTWISE void sign_forward_span(const float* __restrict in, float* __restrict out,
                                        int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = in[i] >= 0 ? 1.0f : -1.0f;
}

// Signed activation backward over one span: ApproxSign's slope (k = 1) or the
// straight-through mask 1{|x| <= 1} (k >= 2).
CTMQ_ELEMENTWISE void signed_backward_span(const float* __restrict g, const float* __restrict in,
                                           float* __restrict out, int64_t n, bool approx_sign) {
  if (approx_sign) {
    for (int64_t i = 0; i < n; ++i) {
      const float slope = std::fabs(in[i]) * -2.0f + 2.0f;  // max(0, 2 - 2|x|)
      out[i] = g[i] * (slope < 0.0f ? 0.0f : slope);
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) out[i] = masked(g[i], std::fabs(in[i]) <= 1.0f);
}

CTMQ_ELEMENTWISE void unsigned_forward_span(const float* __restrict in, float* __restrict out,
                                            int64_t count, float n) {
  for (int64_t i = 0; i < count; ++i) out[i] = round_half_even(clip(in[i], 0.0f, 1.0f) * n) / n;
}

CTMQ_ELEMENTWISE void unsigned_backward_span(const float* __restrict g, const float* __restrict in,
                                             float* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = masked(g[i], in[i] >= 0.0f && in[i] <= 1.0f);
}

}  // namespace

bool applicable(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat32 &&
         t.layout() == torch::kStrided && t.is_non_overlapping_and_dense();
}

bool applicable_rows(const torch::Tensor& t) { return applicable(t) && t.is_contiguous(); }

bool applicable_pair(const torch::Tensor& a, const torch::Tensor& b) {
  return applicable(a) && applicable(b) && a.sizes() == b.sizes() && a.strides() == b.strides();
}

torch::Tensor signed_activation_forward(const torch::Tensor& x, int bits) {
  CTMQ_ASSERT(applicable(x));
  check_bits(bits);
  torch::Tensor y = torch::empty_like(x);
  const float* in = x.data_ptr<float>();
  float* out = y.data_ptr<float>();
  const float h = levels(bits) / 2;  // (2^k - 1) / 2 is exact in float
  for_range(x.numel(), [&](int64_t begin, int64_t end) {
    if (bits == 1) {
      sign_forward_span(in + begin, out + begin, end - begin);
    } else {
      signed_forward_span(in + begin, out + begin, end - begin, h);
    }
  });
  return y;
}

torch::Tensor signed_activation_backward(const torch::Tensor& grad, const torch::Tensor& x,
                                         int bits) {
  check_pair(grad, x);
  check_bits(bits);
  torch::Tensor gx = torch::empty_like(x);
  const float* g = grad.data_ptr<float>();
  const float* in = x.data_ptr<float>();
  float* out = gx.data_ptr<float>();
  for_range(x.numel(), [&](int64_t begin, int64_t end) {
    signed_backward_span(g + begin, in + begin, out + begin, end - begin, bits == 1);
  });
  return gx;
}

torch::Tensor unsigned_activation_forward(const torch::Tensor& x, int bits) {
  CTMQ_ASSERT(applicable(x));
  check_bits(bits);
  torch::Tensor y = torch::empty_like(x);
  const float* in = x.data_ptr<float>();
  float* out = y.data_ptr<float>();
  const float n = levels(bits);
  for_range(x.numel(), [&](int64_t begin, int64_t end) {
    unsigned_forward_span(in + begin, out + begin, end - begin, n);
  });
  return y;
}

torch::Tensor unsigned_activation_backward(const torch::Tensor& grad, const torch::Tensor& x) {
  check_pair(grad, x);
  torch::Tensor gx = torch::empty_like(x);
  const float* g = grad.data_ptr<float>();
  const float* in = x.data_ptr<float>();
  float* out = gx.data_ptr<float>();
  for_range(x.numel(), [&](int64_t begin, int64_t end) {
    unsigned_backward_span(g + begin, in + begin, out + begin, end - begin);
  });
  return gx;
}

torch::Tensor binary_weight_forward(const torch::Tensor& w, const torch::Tensor& alpha) {
  CTMQ_ASSERT(applicable_rows(w) && w.dim() >= 1 && alpha.numel() == w.size(0));
  const std::vector<float> a = small_vector(alpha);
  torch::Tensor y = torch::empty_like(w);
  const int64_t channels = w.size(0);
  const int64_t inner = channels > 0 ? w.numel() / channels : 0;
  const float* __restrict in = w.data_ptr<float>();
  float* __restrict out = y.data_ptr<float>();
  at::parallel_for(0, channels, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, inner)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t c = begin; c < end; ++c) {
                       const float ac = a[c];
                       const float* __restrict wc = in + c * inner;
                       float* __restrict yc = out + c * inner;
                       for (int64_t i = 0; i < inner; ++i) yc[i] = (wc[i] >= 0 ? 1.0f : -1.0f) * ac;
                     }
                   });
  return y;
}

std::pair<torch::Tensor, torch::Tensor> dorefa_weight_forward(const torch::Tensor& t, int bits,
                                                              bool per_channel) {
  CTMQ_ASSERT(applicable_rows(t) && t.numel() > 0 && bits >= 2 && bits <= 8);
  CTMQ_ASSERT(!per_channel || t.dim() >= 1);
  const int64_t rows = per_channel ? t.size(0) : 1;
  const int64_t inner = t.numel() / rows;
  torch::Tensor y = torch::empty_like(t);
  torch::Tensor max_abs = torch::empty({rows}, torch::kFloat32);
  const float* __restrict in = t.data_ptr<float>();
  float* __restrict out = y.data_ptr<float>();
  float* __restrict m = max_abs.data_ptr<float>();
  const float n = levels(bits);
  at::parallel_for(0, rows, row_grain(inner), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* __restrict tr = in + r * inner;
      float* __restrict yr = out + r * inner;
      m[r] = row_max_abs(tr, inner);
      const float d = dorefa_divisor(m[r]);
      for (int64_t i = 0; i < inner; ++i) {
        yr[i] = round_half_even((tr[i] / d + 0.5f) * n) / n * 2.0f - 1.0f;
      }
    }
  });
  return {y, max_abs};
}

torch::Tensor dorefa_weight_backward(const torch::Tensor& grad, const torch::Tensor& t,
                                     const torch::Tensor& max_abs, bool per_channel) {
  check_pair(grad, t);
  CTMQ_ASSERT(t.is_contiguous());
  const std::vector<float> m = small_vector(max_abs);
  const int64_t rows = static_cast<int64_t>(m.size());
  CTMQ_ASSERT(rows == (per_channel ? t.size(0) : 1) && t.numel() > 0);
  const int64_t inner = t.numel() / rows;
  torch::Tensor grad_t = torch::empty_like(t);
  torch::Tensor terms = torch::empty_like(t);  // -g2 (t / d) / d, summed per row below
  const float* __restrict g = grad.data_ptr<float>();
  const float* __restrict in = t.data_ptr<float>();
  float* __restrict gt = grad_t.data_ptr<float>();
  float* __restrict e = terms.data_ptr<float>();
  at::parallel_for(0, rows, row_grain(inner), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float d = dorefa_divisor(m[r]);
      const int64_t first = r * inner;
      for (int64_t i = first; i < first + inner; ++i) {
        const float g2 = g[i] * 2.0f;
        gt[i] = g2 / d;
        e[i] = -g2 * ((in[i] / d) / d);
      }
    }
  });
  // The composed version's divisor is a scalar (per tensor) or [C, 1, ...]
  // (per channel); autograd reduces its broadcast gradient with sum_to:
  // sum() for a scalar, else a keepdim sum over the dims it broadcast along.
  torch::Tensor sums;
  if (!per_channel) {
    sums = terms.sum();
  } else {
    std::vector<int64_t> dims;
    for (int64_t i = 1; i < t.dim(); ++i) {
      if (t.size(i) != 1) dims.push_back(i);
    }
    sums = dims.empty() ? terms : terms.sum(dims, /*keepdim=*/true);
  }
  const std::vector<float> row_sum = small_vector(sums.reshape({rows}));
  for (int64_t r = 0; r < rows; ++r) {
    // Backward of 2 clamp_min(m, 1e-12), then max/amax's even split over ties.
    const float grad_m = m[r] >= kDoReFaMinMax ? row_sum[r] * 2.0f : 0.0f;
    const int64_t first = r * inner;
    int64_t count = 0;
    for (int64_t i = first; i < first + inner; ++i) count += tied(std::fabs(in[i]), m[r]);
    const float share = grad_m / static_cast<float>(count);
    // Per tensor, max's backward fills zeros at the other elements; per
    // channel, amax's multiplies the share by the 0/1 mask (NaN * 0 is NaN).
    const bool spread = per_channel && !std::isfinite(share);
    for (int64_t i = first; i < first + inner; ++i) {
      if (tied(std::fabs(in[i]), m[r])) {
        gt[i] = gt[i] + share * sgn(in[i]);
      } else if (spread) {
        gt[i] = gt[i] + share * 0.0f * sgn(in[i]);
      }
    }
  }
  return grad_t;
}

torch::Tensor lsq_forward(const torch::Tensor& v, const torch::Tensor& step, int64_t qn,
                          int64_t qp) {
  CTMQ_ASSERT(applicable(v));
  CTMQ_ASSERT(step.numel() == 1 ||
              (v.dim() >= 1 && step.numel() == v.size(0) && v.is_contiguous()));
  const std::vector<float> s = small_vector(step);
  torch::Tensor y = torch::empty_like(v);
  const float* in = v.data_ptr<float>();
  float* out = y.data_ptr<float>();
  const float fqn = static_cast<float>(qn), fqp = static_cast<float>(qp);
  if (s.size() == 1) {
    for_range(v.numel(), [&](int64_t begin, int64_t end) {
      lsq_forward_span(in + begin, out + begin, end - begin, s[0], fqn, fqp);
    });
    return y;
  }
  const int64_t channels = v.size(0);
  const int64_t inner = channels > 0 ? v.numel() / channels : 0;
  at::parallel_for(0, channels, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, inner)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t c = begin; c < end; ++c) {
                       lsq_forward_span(in + c * inner, out + c * inner, inner, s[c], fqn, fqp);
                     }
                   });
  return y;
}

std::pair<torch::Tensor, torch::Tensor> lsq_backward(const torch::Tensor& grad,
                                                     const torch::Tensor& v,
                                                     const torch::Tensor& step, int64_t qn,
                                                     int64_t qp, double grad_scale) {
  check_pair(grad, v);
  CTMQ_ASSERT(step.numel() == 1 ||
              (v.dim() >= 1 && step.numel() == v.size(0) && v.is_contiguous()));
  const std::vector<float> s = small_vector(step);
  torch::Tensor gv = torch::empty_like(v);
  const float* g = grad.data_ptr<float>();
  const float* in = v.data_ptr<float>();
  float* out = gv.data_ptr<float>();
  const float fqn = static_cast<float>(qn), fqp = static_cast<float>(qp);
  const int64_t n = v.numel();
  // One partial sum per span: a fixed block (per tensor) or a channel.
  const bool per_tensor = s.size() == 1;
  const int64_t span = per_tensor ? kSumBlock : (v.size(0) > 0 ? n / v.size(0) : 0);
  const int64_t spans = per_tensor ? (n + kSumBlock - 1) / kSumBlock : v.size(0);
  std::vector<double> partial(spans, 0.0);
  at::parallel_for(0, spans, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, span)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t b = begin; b < end; ++b) {
                       const int64_t first = b * span;
                       const int64_t count = std::min(span, n - first);
                       partial[b] = lsq_backward_span(g + first, in + first, out + first, count,
                                                      s[per_tensor ? 0 : b], fqn, fqp);
                     }
                   });
  torch::Tensor grad_step = torch::empty({static_cast<int64_t>(s.size())}, torch::kFloat32);
  float* gs = grad_step.data_ptr<float>();
  const float scale = static_cast<float>(grad_scale);
  if (per_tensor) {
    double sum = 0;
    for (double p : partial) sum += p;
    gs[0] = static_cast<float>(sum) * scale;
  } else {
    for (size_t c = 0; c < s.size(); ++c) gs[c] = static_cast<float>(partial[c]) * scale;
  }
  return {gv, grad_step.view(step.sizes()).to(step.options())};
}

}  // namespace ctmq::quant::fused
