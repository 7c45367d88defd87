// The fused CPU kernels against the composed ATen versions (quantizers.h's
// reference::), forward and backward, on seeded random data plus the edge values
// of each quantizer: exactly 0 and -0, +-1 and their float neighbours, the
// rounding half points of every level, values far outside the range and +-inf.
// Forward and grad_x must be equal (torch::equal: bit for bit up to the sign of
// zero); LSQ's step gradient within float32 summation accuracy (fused_kernels.h).
#include "ctmq/quant/fused_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "ctmq/quant/quantizers.h"

namespace ctmq::quant {
namespace {

using Quantizer = std::function<torch::Tensor(const torch::Tensor&)>;

// Values around `points` (each point and its float neighbours) followed by
// seeded normal values of scale `spread`, shaped [4, rest] (not a multiple of 8
// elements, so the loops' tails run; over 2 x 16384 so LSQ sums several blocks).
torch::Tensor edge_input(const std::vector<float>& points, float spread, uint64_t seed) {
  std::vector<float> values = {0.0f,
                               -0.0f,
                               1.0f,
                               -1.0f,
                               1e6f,
                               -1e6f,
                               3.5f,
                               -3.5f,
                               0.5f,
                               -0.5f,
                               std::numeric_limits<float>::infinity(),
                               -std::numeric_limits<float>::infinity()};
  for (float p : points) {
    values.push_back(p);
    values.push_back(std::nextafter(p, -INFINITY));
    values.push_back(std::nextafter(p, INFINITY));
  }
  torch::manual_seed(seed);
  const int64_t total = 4 * 9001;
  const torch::Tensor head = torch::tensor(values);
  const torch::Tensor rest = torch::randn({total - head.numel()}) * spread;
  return torch::cat({head, rest}).view({4, -1});
}

// Half points and levels of the signed quantizer at k bits, in x's units:
// round(h c + h) changes at h c + h = m + 1/2, i.e. c = (m + 1/2) / h - 1.
std::vector<float> signed_points(int bits) {
  const float h = static_cast<float>((1 << bits) - 1) / 2;
  std::vector<float> points;
  for (int m = 0; m <= 2 * h; ++m) {
    points.push_back((m + 0.5f) / h - 1.0f);
    points.push_back(m / h - 1.0f);
  }
  return points;
}

std::vector<float> unsigned_points(int bits) {
  const float n = static_cast<float>((1 << bits) - 1);
  std::vector<float> points;
  for (int m = 0; m <= n; ++m) {
    points.push_back((m + 0.5f) / n);
    points.push_back(m / n);
  }
  return points;
}

// Random upstream gradient with exact zeros and negative values, with x's
// strides where x is dense (as autograd's gradient of a dense output).
torch::Tensor upstream_like(const torch::Tensor& x, uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor g = torch::randn(x.sizes(), x.options());
  g.view(-1).slice(0, 0, 7).zero_();
  return torch::empty_like(x).copy_(g);
}

// Forward and grad_x of `fused` and `reference` on the same input and upstream.
void expect_same(const Quantizer& fused, const Quantizer& reference, const torch::Tensor& input,
                 const std::string& what) {
  const torch::Tensor upstream = upstream_like(input, 99);
  const torch::Tensor xf = input.clone().requires_grad_(true);
  const torch::Tensor xr = input.clone().requires_grad_(true);
  const torch::Tensor yf = fused(xf);
  const torch::Tensor yr = reference(xr);
  yf.backward(upstream);
  yr.backward(upstream);
  EXPECT_TRUE(torch::equal(yf, yr))
      << what << ": forward differs, max |diff| " << (yf - yr).abs().max().item<float>();
  EXPECT_TRUE(torch::equal(xf.grad(), xr.grad()))
      << what << ": grad_x differs, max |diff| "
      << (xf.grad() - xr.grad()).abs().max().item<float>();
}

TEST(FusedKernels, SignedActivationEqualsComposedAtEveryBitDepth) {
  for (int bits = 1; bits <= 8; ++bits) {
    const torch::Tensor x = edge_input(signed_points(bits), 1.5f, bits);
    ASSERT_TRUE(fused::applicable(x));
    expect_same([&](const torch::Tensor& t) { return signed_activation(t, bits); },
                [&](const torch::Tensor& t) { return reference::signed_activation(t, bits); }, x,
                "signed " + std::to_string(bits) + " bits");
    // The kernels themselves, without autograd.
    const torch::Tensor g = upstream_like(x, bits);
    const torch::Tensor xr = x.clone().requires_grad_(true);
    reference::signed_activation(xr, bits).backward(g);
    EXPECT_TRUE(torch::equal(fused::signed_activation_forward(x, bits),
                             reference::signed_activation(x, bits).detach()))
        << bits;
    EXPECT_TRUE(torch::equal(fused::signed_activation_backward(g, x, bits), xr.grad())) << bits;
  }
}

TEST(FusedKernels, UnsignedActivationEqualsComposedAtEveryBitDepth) {
  for (int bits = 1; bits <= 8; ++bits) {
    const torch::Tensor x = edge_input(unsigned_points(bits), 1.0f, 20 + bits);
    expect_same([&](const torch::Tensor& t) { return unsigned_activation(t, bits); },
                [&](const torch::Tensor& t) { return reference::unsigned_activation(t, bits); }, x,
                "unsigned " + std::to_string(bits) + " bits");
    EXPECT_TRUE(torch::equal(fused::unsigned_activation_forward(x, bits),
                             reference::unsigned_activation(x, bits).detach()))
        << bits;
  }
}

TEST(FusedKernels, BinaryWeightEqualsComposed) {
  // Weights [out, in, 1, 1] with the edge values in the first channel.
  const torch::Tensor w = edge_input({0.25f, -0.25f}, 0.7f, 31).view({4, -1, 1, 1});
  ASSERT_TRUE(fused::applicable(w));
  expect_same([](const torch::Tensor& t) { return binary_weight(t); },
              [](const torch::Tensor& t) { return reference::binary_weight(t); }, w,
              "binary weight");
  const torch::Tensor small = torch::randn({16, 16, 3, 3}) * 0.1;
  expect_same([](const torch::Tensor& t) { return binary_weight(t); },
              [](const torch::Tensor& t) { return reference::binary_weight(t); }, small,
              "binary weight 16x16x3x3");
}

// LSQ at k bits with `step` ([1] or [C]): forward and grad_v equal, grad_step
// within float32 summation error of the sum of |terms|.
void expect_lsq_same(const torch::Tensor& v, const torch::Tensor& step, int bits,
                     const std::string& what) {
  const double grad_scale = lsq_grad_scale(v.numel() / step.numel(), bits);
  const torch::Tensor upstream = upstream_like(v, 7);
  const torch::Tensor vf = v.clone().requires_grad_(true), vr = v.clone().requires_grad_(true);
  const torch::Tensor sf = step.clone().requires_grad_(true),
                      sr = step.clone().requires_grad_(true);
  const torch::Tensor yf = lsq_quantize(vf, sf, bits, grad_scale);
  const torch::Tensor yr = reference::lsq_quantize(vr, sr, bits, grad_scale);
  yf.backward(upstream);
  yr.backward(upstream);
  EXPECT_TRUE(torch::equal(yf, yr)) << what << ": forward";
  EXPECT_TRUE(torch::equal(vf.grad(), vr.grad())) << what << ": grad_v";
  ASSERT_EQ(sf.grad().sizes(), sr.grad().sizes()) << what;
  // Each term is at most Q_N |grad|; both sums are within ~n eps of the exact one
  // in the worst case, far less in practice (pairwise / float64 blocks).
  const torch::Tensor bound =
      upstream.abs().reshape({step.numel(), -1}).sum(1).mul(lsq_qn(bits) * grad_scale * 1e-6);
  EXPECT_TRUE((sf.grad() - sr.grad()).abs().le(bound.view(sf.grad().sizes())).all().item<bool>())
      << what << ": grad_step " << sf.grad().view(-1).slice(0, 0, 3) << " against "
      << sr.grad().view(-1).slice(0, 0, 3);
}

TEST(FusedKernels, LsqEqualsComposedAtEveryBitDepthAndGranularity) {
  for (int bits = 2; bits <= 8; ++bits) {
    const float s = 1.0f / 16;  // a power of two: the half points below are exact
    std::vector<float> points;
    for (int64_t m = -lsq_qn(bits) - 1; m <= lsq_qp(bits) + 1; ++m) {
      points.push_back((m + 0.5f) * s);
      points.push_back(m * s);
    }
    const torch::Tensor v = edge_input(points, s * lsq_qp(bits), 40 + bits);
    ASSERT_GT(v.numel(), 2 * 16384);
    const std::string tag = std::to_string(bits) + " bits";
    expect_lsq_same(v, torch::full({1}, s), bits, "per tensor, power-of-two step, " + tag);
    expect_lsq_same(v, torch::full({1}, 0.037f), bits, "per tensor, " + tag);
    expect_lsq_same(v, torch::tensor({s, 0.037f, 0.5f, 0.01f}), bits, "per channel, " + tag);
  }
}

TEST(FusedKernels, DoReFaWeightEqualsComposedAtEveryBitDepthAndGranularity) {
  // edge_input's +-1e6 and +-inf saturate tanh to +-1: several elements tie at
  // the maximum, where max/amax's backward splits the gradient.
  const torch::Tensor edges = edge_input({0.25f, -0.25f, 0.5f}, 0.7f, 70).view({4, -1, 1, 1});
  torch::manual_seed(71);
  torch::Tensor conv = torch::randn({16, 8, 3, 3}) * 0.1;
  conv[1].zero_();          // a channel of zeros: max |t| = 0 < 1e-12
  conv[2][0][0][0] = 0.5f;  // one channel's maximum, tied twice
  conv[2][3][1][1] = -0.5f;
  const torch::Tensor linear = torch::randn({10, 32});
  for (int bits = 2; bits <= 8; ++bits) {
    for (Granularity g : {Granularity::kPerTensor, Granularity::kPerChannel}) {
      const std::string tag = std::to_string(bits) + " bits, " + enum_name(kGranularityNames, g);
      for (const torch::Tensor& w : {edges, conv, linear}) {
        ASSERT_TRUE(fused::applicable(w));
        expect_same([&](const torch::Tensor& x) { return dorefa_weight(x, bits, g); },
                    [&](const torch::Tensor& x) { return reference::dorefa_weight(x, bits, g); }, w,
                    "DoReFa " + tag + " " + std::to_string(w.dim()) + "-D");
      }
    }
  }
}

// Dense tensors in another order of dimensions (a transposed matrix, the
// trainer's channels-last activations) run the element-wise kernels in memory
// order: the same values as the composed version and as the contiguous input,
// and the input's strides kept.
TEST(FusedKernels, DenseNonContiguousLayoutsRunFused) {
  const torch::Tensor head = edge_input(signed_points(3), 1.5f, 60).view(-1);
  torch::manual_seed(61);
  const torch::Tensor values = torch::randn({8, 16, 16, 17}) * 1.5;  // 34,816 > 2 x 16384
  values.view(-1).slice(0, 0, 100).copy_(head.slice(0, 0, 100));
  const torch::Tensor channels_last = values.contiguous(torch::MemoryFormat::ChannelsLast);
  const torch::Tensor transposed = edge_input(signed_points(3), 1.5f, 62).t();
  for (const torch::Tensor& x : {channels_last, transposed}) {
    ASSERT_FALSE(x.is_contiguous());
    ASSERT_TRUE(fused::applicable(x));
    ASSERT_TRUE(fused::applicable_pair(upstream_like(x, 1), x));
    for (int bits : {1, 3, 8}) {
      const std::string tag = std::to_string(x.dim()) + "-D, " + std::to_string(bits) + " bits";
      expect_same([&](const torch::Tensor& t) { return signed_activation(t, bits); },
                  [&](const torch::Tensor& t) { return reference::signed_activation(t, bits); }, x,
                  "signed " + tag);
      expect_same([&](const torch::Tensor& t) { return unsigned_activation(t, bits); },
                  [&](const torch::Tensor& t) { return reference::unsigned_activation(t, bits); },
                  x, "unsigned " + tag);
      const torch::Tensor y = fused::signed_activation_forward(x, bits);
      EXPECT_EQ(y.strides(), x.strides()) << tag;
      EXPECT_TRUE(torch::equal(y, fused::signed_activation_forward(x.contiguous(), bits))) << tag;
    }
    expect_lsq_same(x, torch::full({1}, 0.05f), 4, "LSQ per tensor, " + std::to_string(x.dim()));
  }
  // Weights: the element-wise backward runs fused in any dense layout; the
  // per-channel forwards need a contiguous weight and fall back otherwise.
  const torch::Tensor weight =
      (torch::randn({16, 16, 3, 3}) * 0.1).contiguous(torch::MemoryFormat::ChannelsLast);
  ASSERT_FALSE(fused::applicable_rows(weight));
  expect_same([](const torch::Tensor& t) { return binary_weight(t); },
              [](const torch::Tensor& t) { return reference::binary_weight(t); }, weight,
              "binary weight, channels-last");
  expect_same([](const torch::Tensor& t) { return dorefa_weight(t, 4, Granularity::kPerChannel); },
              [](const torch::Tensor& t) {
                return reference::dorefa_weight(t, 4, Granularity::kPerChannel);
              },
              weight, "DoReFa weight, channels-last");
}

TEST(FusedKernels, NonDenseAndOtherDtypesFallBackToComposed) {
  const torch::Tensor base = edge_input(signed_points(3), 1.5f, 50);  // [4, 9001]
  const torch::Tensor strided = base.slice(1, 0, 9000, 2);            // every other column
  const torch::Tensor as_double = base.to(torch::kFloat64);
  for (const torch::Tensor& x : {strided, as_double}) {
    EXPECT_FALSE(fused::applicable(x));
    for (int bits : {1, 3}) {
      expect_same([&](const torch::Tensor& t) { return signed_activation(t, bits); },
                  [&](const torch::Tensor& t) { return reference::signed_activation(t, bits); }, x,
                  "fallback signed");
      expect_same([&](const torch::Tensor& t) { return unsigned_activation(t, bits); },
                  [&](const torch::Tensor& t) { return reference::unsigned_activation(t, bits); },
                  x, "fallback unsigned");
    }
    expect_lsq_same(x, torch::full({1}, 0.05, x.options()), 4, "fallback LSQ");
  }
  // A gradient whose strides differ from its input's falls back too.
  EXPECT_FALSE(fused::applicable_pair(base.t().contiguous(), base.t()));
  // The non-dense result equals the fused one on the same values.
  EXPECT_TRUE(
      torch::equal(signed_activation(strided, 3), signed_activation(strided.contiguous(), 3)));
  const torch::Tensor strided_weight = strided.unsqueeze(2);  // [4, 4500, 1], not contiguous
  EXPECT_FALSE(fused::applicable(strided_weight));
  expect_same([](const torch::Tensor& t) { return binary_weight(t); },
              [](const torch::Tensor& t) { return reference::binary_weight(t); }, strided_weight,
              "fallback binary weight");
  EXPECT_TRUE(
      torch::equal(binary_weight(strided_weight), binary_weight(strided_weight.contiguous())));
  expect_same([](const torch::Tensor& t) { return dorefa_weight(t, 3, Granularity::kPerChannel); },
              [](const torch::Tensor& t) {
                return reference::dorefa_weight(t, 3, Granularity::kPerChannel);
              },
              strided_weight, "fallback DoReFa weight");
  EXPECT_TRUE(torch::equal(dorefa_weight(strided_weight, 3, Granularity::kPerTensor),
                           dorefa_weight(strided_weight.contiguous(), 3, Granularity::kPerTensor)));
}

TEST(FusedKernels, ResultsDoNotDependOnThreadCount) {
  const torch::Tensor v = edge_input({}, 3.0f, 60);
  const torch::Tensor step = torch::full({1}, 0.043f);
  const torch::Tensor g = upstream_like(v, 61);
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  const auto one = fused::lsq_backward(g, v, step, 8, 7, 0.01);
  const torch::Tensor y_one = fused::signed_activation_forward(v, 4);
  torch::set_num_threads(2);
  const auto two = fused::lsq_backward(g, v, step, 8, 7, 0.01);
  EXPECT_TRUE(torch::equal(fused::signed_activation_forward(v, 4), y_one));
  EXPECT_TRUE(torch::equal(one.first, two.first));
  EXPECT_TRUE(torch::equal(one.second, two.second));
  torch::set_num_threads(threads);
}

}  // namespace
}  // namespace ctmq::quant
