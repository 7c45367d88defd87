// Oracles for the quantizer functions: slow element-by-element computations of
// method.md's formulas, the analytic straight-through gradients, level counts,
// and PyTorch's own fake-quantize ops where the functions coincide.
#include "ctmq/quant/quantizers.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace ctmq::quant {
namespace {

// Slow oracle of q_k in float, in the same order of operations as the library
// (multiply by n, round half to even, divide by n).
float q_oracle(float x, int bits) {
  const float n = static_cast<float>((1 << bits) - 1);
  return std::nearbyint(x * n) / n;
}

std::vector<float> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous().to(torch::kFloat32);
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

void expect_close(const torch::Tensor& actual, const std::vector<float>& expected, double tol) {
  const std::vector<float> a = to_vector(actual);
  ASSERT_EQ(a.size(), expected.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_NEAR(a[i], expected[i], tol) << "element " << i;
  }
}

// Input with gradient, and the gradient of sum(f(x) * g) w.r.t. x for a
// seeded random upstream gradient g.
struct GradCase {
  torch::Tensor x;
  torch::Tensor upstream;
};

GradCase make_case(torch::Tensor values, uint64_t seed) {
  torch::manual_seed(seed);
  return {values.clone().requires_grad_(true), torch::randn(values.sizes())};
}

torch::Tensor grad_of(const GradCase& c, const torch::Tensor& y) {
  (y * c.upstream).sum().backward();
  return c.x.grad();
}

TEST(UniformQuantize, MatchesOracleAndPassesGradientStraightThrough) {
  for (int bits = 1; bits <= 8; ++bits) {
    torch::manual_seed(bits);
    GradCase c = make_case(torch::rand({1000}), 100 + bits);
    const torch::Tensor y = uniform_quantize(c.x, bits);
    std::vector<float> expected;
    for (float v : to_vector(c.x)) expected.push_back(q_oracle(v, bits));
    expect_close(y, expected, 1e-6);
    EXPECT_TRUE(torch::equal(grad_of(c, y), c.upstream)) << bits << " bits";
  }
}

TEST(UniformQuantize, FullPrecisionIsIdentity) {
  const torch::Tensor x = torch::randn({64});
  EXPECT_TRUE(torch::equal(uniform_quantize(x, 32), x));
  EXPECT_TRUE(torch::equal(signed_activation(x, 32), x));
  EXPECT_TRUE(torch::equal(unsigned_activation(x, 32), x));
  EXPECT_TRUE(
      torch::equal(dorefa_weight(x.view({8, 8}), 32, Granularity::kPerTensor), x.view({8, 8})));
}

TEST(Quantizers, DistinctLevelsAreExactlyTwoToTheK) {
  const torch::Tensor unit = torch::linspace(0, 1, 20001);
  const torch::Tensor wide = torch::linspace(-1.5, 1.5, 30001);
  const torch::Tensor weights = torch::linspace(-3, 3, 60001).view({1, -1});
  for (int bits = 1; bits <= 8; ++bits) {
    const int64_t levels = int64_t{1} << bits;
    EXPECT_EQ(std::get<0>(torch::_unique(uniform_quantize(unit, bits))).numel(), levels) << bits;
    EXPECT_EQ(std::get<0>(torch::_unique(signed_activation(wide, bits))).numel(), levels) << bits;
    EXPECT_EQ(std::get<0>(torch::_unique(unsigned_activation(wide, bits))).numel(), levels) << bits;
    if (bits >= 2) {
      EXPECT_EQ(std::get<0>(torch::_unique(dorefa_weight(weights, bits, Granularity::kPerTensor)))
                    .numel(),
                levels)
          << bits;
      // Step 0.01 over [-10, 10]: the clip range [-Q_N, Q_P] steps is inside it.
      const torch::Tensor lsq =
          lsq_quantize(torch::linspace(-10, 10, 4001), torch::full({1}, 0.01), bits, 1.0);
      EXPECT_EQ(std::get<0>(torch::_unique(lsq)).numel(), levels) << bits;
    }
  }
  EXPECT_EQ(std::get<0>(torch::_unique(binary_weight(weights))).numel(), 2);
}

TEST(SignedActivation, ForwardMatchesOracle) {
  for (int bits = 1; bits <= 8; ++bits) {
    torch::manual_seed(bits);
    const torch::Tensor x = torch::randn({2000}) * 1.5;
    std::vector<float> expected;
    for (float v : to_vector(x)) {
      if (bits == 1) {
        expected.push_back(v >= 0 ? 1.0f : -1.0f);
      } else {
        const float c = std::min(1.0f, std::max(-1.0f, v));
        expected.push_back(2 * q_oracle((c + 1) * 0.5f, bits) - 1);
      }
    }
    expect_close(signed_activation(x, bits), expected, 1e-6);
  }
}

TEST(SignedActivation, GradientIsOneInsideClipZeroOutside) {
  for (int bits = 2; bits <= 8; ++bits) {
    GradCase c = make_case(torch::randn({2000}) * 1.5, bits);
    const torch::Tensor g = grad_of(c, signed_activation(c.x, bits));
    const std::vector<float> x = to_vector(c.x.detach());
    const std::vector<float> up = to_vector(c.upstream);
    std::vector<float> expected;
    int inside = 0, outside = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const bool in = std::fabs(x[i]) <= 1;
      (in ? inside : outside)++;
      expected.push_back(in ? up[i] : 0.0f);
    }
    ASSERT_GT(inside, 100);
    ASSERT_GT(outside, 100);
    expect_close(g, expected, 0);
  }
}

TEST(SignedActivation, OneBitUsesApproxSignPieces) {
  // Each piece of ApproxSign at hand-picked points, then on random data.
  GradCase points =
      make_case(torch::tensor({-1.5f, -1.0f, -0.75f, -0.25f, 0.0f, 0.25f, 0.9f, 1.0f, 2.0f}), 7);
  points.upstream = torch::ones({9});
  const torch::Tensor g = grad_of(points, signed_activation(points.x, 1));
  expect_close(g, {0.0f, 0.0f, 0.5f, 1.5f, 2.0f, 1.5f, 0.2f, 0.0f, 0.0f}, 1e-6);

  GradCase c = make_case(torch::randn({2000}), 8);
  const torch::Tensor gr = grad_of(c, signed_activation(c.x, 1));
  std::vector<float> expected;
  const std::vector<float> x = to_vector(c.x.detach());
  const std::vector<float> up = to_vector(c.upstream);
  for (size_t i = 0; i < x.size(); ++i) {
    float d = 0;
    if (x[i] >= -1 && x[i] < 0) d = 2 + 2 * x[i];
    if (x[i] >= 0 && x[i] < 1) d = 2 - 2 * x[i];
    expected.push_back(d * up[i]);
  }
  expect_close(gr, expected, 1e-5);
}

TEST(UnsignedActivation, ForwardAndGradientMatchOracle) {
  for (int bits = 1; bits <= 8; ++bits) {
    GradCase c = make_case(torch::randn({2000}), 20 + bits);
    const torch::Tensor y = unsigned_activation(c.x, bits);
    const torch::Tensor g = grad_of(c, y);
    const std::vector<float> x = to_vector(c.x.detach());
    const std::vector<float> up = to_vector(c.upstream);
    std::vector<float> ey, eg;
    for (size_t i = 0; i < x.size(); ++i) {
      ey.push_back(q_oracle(std::min(1.0f, std::max(0.0f, x[i])), bits));
      eg.push_back(x[i] >= 0 && x[i] <= 1 ? up[i] : 0.0f);
    }
    expect_close(y, ey, 1e-6);
    expect_close(g, eg, 0);
  }
}

TEST(DoReFaWeight, ForwardMatchesOraclePerTensorAndPerChannel) {
  torch::manual_seed(3);
  const torch::Tensor w = torch::randn({6, 4, 3, 3});
  for (int bits = 2; bits <= 8; ++bits) {
    for (Granularity gran : {Granularity::kPerTensor, Granularity::kPerChannel}) {
      const std::vector<float> wv = to_vector(w);
      const size_t per_channel = wv.size() / 6;
      std::vector<float> max_abs(6, 0.0f);
      float global_max = 0;
      for (size_t i = 0; i < wv.size(); ++i) {
        const float t = std::fabs(std::tanh(wv[i]));
        max_abs[i / per_channel] = std::max(max_abs[i / per_channel], t);
        global_max = std::max(global_max, t);
      }
      std::vector<float> expected;
      for (size_t i = 0; i < wv.size(); ++i) {
        const float m = gran == Granularity::kPerChannel ? max_abs[i / per_channel] : global_max;
        expected.push_back(2 * q_oracle(std::tanh(wv[i]) / (2 * m) + 0.5f, bits) - 1);
      }
      expect_close(dorefa_weight(w, bits, gran), expected, 1e-5);
    }
  }
}

TEST(DoReFaWeight, GradientIsThatOfTheUnroundedFormula) {
  // With q_k straight-through, d W_q / dW is the gradient of tanh(W) / max|tanh(W)|.
  for (Granularity gran : {Granularity::kPerTensor, Granularity::kPerChannel}) {
    torch::manual_seed(4);
    GradCase c = make_case(torch::randn({5, 7}), 5);
    const torch::Tensor g = grad_of(c, dorefa_weight(c.x, 3, gran));
    const torch::Tensor w = c.x.detach().clone().requires_grad_(true);
    const torch::Tensor t = torch::tanh(w);
    const torch::Tensor m = gran == Granularity::kPerChannel
                                ? std::get<0>(t.abs().max(1, /*keepdim=*/true))
                                : t.abs().max();
    ((t / m) * c.upstream).sum().backward();
    expect_close(g, to_vector(w.grad()), 1e-5);
  }
}

TEST(BinaryWeight, ForwardIsChannelMeanTimesSignAndGradientIsClampGradient) {
  GradCase c = make_case(torch::randn({4, 3, 3, 3}) * 1.2, 9);
  const torch::Tensor y = binary_weight(c.x);
  const torch::Tensor g = grad_of(c, y);
  const std::vector<float> w = to_vector(c.x.detach());
  const std::vector<float> up = to_vector(c.upstream);
  const size_t per = w.size() / 4;
  std::vector<float> ey, eg;
  int outside = 0;
  for (size_t ch = 0; ch < 4; ++ch) {
    double alpha = 0;
    for (size_t i = 0; i < per; ++i) alpha += std::fabs(w[ch * per + i]);
    alpha /= per;
    for (size_t i = 0; i < per; ++i) {
      const float v = w[ch * per + i];
      ey.push_back(static_cast<float>(v >= 0 ? alpha : -alpha));
      eg.push_back(std::fabs(v) <= 1 ? up[ch * per + i] : 0.0f);
      outside += std::fabs(v) > 1;
    }
  }
  ASSERT_GT(outside, 10);
  expect_close(y, ey, 1e-6);
  expect_close(g, eg, 0);
}

TEST(Lsq, ForwardAndGradientsMatchAnalyticFormulas) {
  for (int bits = 2; bits <= 4; ++bits) {
    GradCase c = make_case(torch::randn({3000}) * 2, 30 + bits);
    const torch::Tensor step = torch::full({1}, 0.3).requires_grad_(true);
    const double gs = lsq_grad_scale(3000, bits);
    const torch::Tensor y = lsq_quantize(c.x, step, bits, gs);
    const torch::Tensor g = grad_of(c, y);
    const float s = 0.3f;
    const float qn = static_cast<float>(1 << (bits - 1)), qp = qn - 1;
    const std::vector<float> x = to_vector(c.x.detach());
    const std::vector<float> up = to_vector(c.upstream);
    std::vector<float> ey, eg;
    double gstep = 0;
    int below = 0, above = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const float v = x[i] / s;
      const float clipped = std::min(qp, std::max(-qn, v));
      ey.push_back(std::nearbyint(clipped) * s);
      const bool inside = v >= -qn && v <= qp;
      eg.push_back(inside ? up[i] : 0.0f);
      below += v < -qn;
      above += v > qp;
      gstep += up[i] * (v < -qn ? -qn : (v > qp ? qp : std::nearbyint(v) - v));
    }
    ASSERT_GT(below, 10);
    ASSERT_GT(above, 10);
    expect_close(y, ey, 1e-6);
    expect_close(g, eg, 0);
    EXPECT_NEAR(step.grad().item<double>(), gstep * gs, 1e-4 * std::fabs(gstep * gs) + 1e-6);
  }
}

TEST(Lsq, InitialStepAndGradScale) {
  const torch::Tensor v = torch::tensor({{1.0f, -3.0f}, {0.5f, 0.5f}});
  EXPECT_NEAR(lsq_initial_step(v, 3, Granularity::kPerTensor).item<float>(),
              2 * 1.25 / std::sqrt(3.0), 1e-6);
  const torch::Tensor per = lsq_initial_step(v, 2, Granularity::kPerChannel);
  EXPECT_NEAR(per[0].item<float>(), 4.0, 1e-6);
  EXPECT_NEAR(per[1].item<float>(), 1.0, 1e-6);
  EXPECT_DOUBLE_EQ(lsq_grad_scale(100, 4), 1.0 / std::sqrt(700.0));
}

// Mapping to PyTorch's fake quantization:
//   fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax)
//       = (clamp(round(x / scale) + zp, qmin, qmax) - zp) * scale
// With scale = 1 / (2^k - 1), zp = 0, qmin = 0, qmax = 2^k - 1 this is
// q_k(clip(x, 0, 1)) = unsigned_activation(x, k) (and uniform_quantize on [0, 1]).
// Its gradient passes where round(x / scale) lies in [qmin, qmax], i.e. on
// [-scale/2, 1 + scale/2), ours on [0, 1]: they coincide away from those strips.
TEST(ActivationLimit, IsTheClipOfEachQuantizerWithItsGradient) {
  const std::vector<float> xs = {-2.f, -1.f, -0.4f, 0.f, 0.3f, 0.99f, 1.5f};
  for (ActivationQuantizer kind :
       {ActivationQuantizer::kSigned, ActivationQuantizer::kLsq, ActivationQuantizer::kUnsigned}) {
    const float lo = kind == ActivationQuantizer::kUnsigned ? 0.f : -1.f;
    torch::Tensor x = torch::tensor(xs).requires_grad_(true);
    torch::Tensor y = activation_limit(x, kind);
    y.sum().backward();
    std::vector<float> expected, grad;
    for (float v : xs) {
      expected.push_back(std::min(1.f, std::max(lo, v)));
      grad.push_back(v > lo && v < 1.f ? 1.f : 0.f);  // torch's hardtanh: 0 on the bounds
    }
    expect_close(y, expected, 0);
    expect_close(x.grad(), grad, 0);
  }
}

TEST(ActivationLimit, SignedQuantizerConvergesToItAsBitsGrow) {
  torch::manual_seed(3);
  torch::Tensor x = torch::randn({4096}) * 1.5;
  const torch::Tensor limit = activation_limit(x, ActivationQuantizer::kSigned);
  double previous = 1e9;
  for (int bits = 2; bits <= 8; ++bits) {
    const double error = (signed_activation(x, bits) - limit).abs().max().item<double>();
    EXPECT_LE(error, 1.0 / ((1 << bits) - 1) + 1e-6) << bits;  // half a level of 2 / (2^k - 1)
    EXPECT_LT(error, previous);
    previous = error;
  }
}

TEST(PactActivation, ForwardAndGradientsMatchTheFormula) {
  // No value on a rounding tie of any k below (ties make float order matter).
  const std::vector<float> xs = {-3.f, -1.1f, -0.5f, 0.f, 0.26f, 0.9f, 2.5f};
  const float a = 1.5f;
  for (int bits : {32, 4, 2, 1}) {
    torch::Tensor x = torch::tensor(xs).requires_grad_(true);
    torch::Tensor alpha = torch::tensor({a}).requires_grad_(true);
    torch::Tensor y = pact_activation(x, alpha, bits);
    y.sum().backward();
    std::vector<float> expected, grad_x;
    double grad_alpha = 0;
    for (float v : xs) {
      const float c = std::min(a, std::max(-a, v));
      const float u = c / a;
      float q = c;
      if (bits == 1) {
        q = a * (u >= 0 ? 1.f : -1.f);
      } else if (bits != 32) {
        q = a * (2 * q_oracle((u + 1) / 2, bits) - 1);
      }
      expected.push_back(q);
      const bool inside = std::fabs(v) <= a;
      // d/dx: STE through the clip (ApproxSign on u at 1 bit).
      const float ste = bits == 1 ? std::max(0.f, 2 - 2 * std::fabs(u)) : 1.f;
      grad_x.push_back(inside ? ste : 0.f);
      // d/dalpha: q/a - u*ste from the product (zero at 32 bits, where q = c), plus the
      // clip's +-1 outside.
      double g = bits == 32 ? 0.0 : q / a - u * ste;
      if (!inside) g += v > 0 ? 1.0 : -1.0;
      if (bits != 32 && !inside) g = q / a - u * ste + (v > 0 ? ste : -ste);
      grad_alpha += g;
    }
    expect_close(y, expected, 1e-6);
    expect_close(x.grad(), grad_x, 1e-6);
    EXPECT_NEAR(alpha.grad().item<double>(), grad_alpha, 1e-5) << bits << " bits";
  }
}

TEST(TorchFakeQuantize, UnsignedActivationMatchesPerTensorAffine) {
  for (int bits = 1; bits <= 8; ++bits) {
    const int64_t n = (int64_t{1} << bits) - 1;
    const double scale = 1.0 / static_cast<double>(n);
    GradCase ours = make_case(torch::randn({4000}), 40 + bits);
    GradCase theirs = make_case(ours.x.detach(), 40 + bits);
    const torch::Tensor y = unsigned_activation(ours.x, bits);
    const torch::Tensor ref = torch::fake_quantize_per_tensor_affine(theirs.x, scale, 0, 0, n);
    EXPECT_LT((y - ref).abs().max().item<double>(), 1e-6) << bits;
    const torch::Tensor g = grad_of(ours, y);
    const torch::Tensor gr = grad_of(theirs, ref);
    const torch::Tensor x = ours.x.detach();
    // Outside the strips [-scale/2, 0) and (1, 1 + scale/2] (with a margin).
    const torch::Tensor away = (x < -scale / 2 - 1e-4)
                                   .logical_or(x.ge(0).logical_and(x.le(1)))
                                   .logical_or(x > 1 + scale / 2 + 1e-4);
    ASSERT_GT(away.sum().item<int64_t>(), 1000);
    EXPECT_LT((g - gr).masked_select(away).abs().max().item<double>(), 1e-6) << bits;
  }
}

// _fake_quantize_learnable_per_tensor_affine(v, s, zp, qmin, qmax, grad_factor)
// with zp = 0, qmin = -Q_N, qmax = Q_P and grad_factor = LSQ's g is exactly
// lsq_quantize(v, s, k, g): round-then-clamp equals clamp-then-round for integer
// bounds, and its step gradient is grad_factor * sum(round(v/s) - v/s inside,
// qmin / qmax outside). Same for the per-channel op along axis 0. PyTorch
// decides inside/outside on round(v/s), LSQ on v/s: they differ on the strips
// v/s in [-Q_N - 1/2, -Q_N) and (Q_P, Q_P + 1/2], so the data avoids those.
TEST(TorchFakeQuantize, LsqMatchesLearnableAffine) {
  for (int bits = 2; bits <= 8; ++bits) {
    const int64_t qn = lsq_qn(bits), qp = lsq_qp(bits);
    torch::manual_seed(50 + bits);
    for (bool per_channel : {false, true}) {
      const torch::Tensor s0 = per_channel ? torch::rand({8}) * 0.1 + 0.05 : torch::full({1}, 0.1);
      const torch::Tensor sb = per_channel ? s0.view({8, 1}) : s0;
      torch::Tensor r = torch::randn({8, 50}) * qn;  // v / s
      r = torch::where(r.lt(-qn).logical_and(r.ge(-qn - 0.5)), r - 1, r);
      r = torch::where(r.gt(qp).logical_and(r.le(qp + 0.5)), r + 1, r);
      ASSERT_GT(r.lt(-qn).sum().item<int64_t>(), 5);
      ASSERT_GT(r.gt(qp).sum().item<int64_t>(), 5);
      const torch::Tensor v0 = r * sb;
      GradCase ours = make_case(v0, 60 + bits);
      GradCase theirs = make_case(v0, 60 + bits);
      const torch::Tensor s1 = s0.clone().requires_grad_(true);
      const torch::Tensor s2 = s0.clone().requires_grad_(true);
      const double g = lsq_grad_scale(per_channel ? 50 : 400, bits);
      const torch::Tensor y = lsq_quantize(ours.x, s1, bits, g);
      torch::Tensor ref;
      if (per_channel) {
        ref = torch::_fake_quantize_learnable_per_channel_affine(theirs.x, s2, torch::zeros({8}), 0,
                                                                 -qn, qp, g);
      } else {
        ref = torch::_fake_quantize_learnable_per_tensor_affine(theirs.x, s2, torch::zeros({1}),
                                                                -qn, qp, g);
      }
      EXPECT_LT((y - ref).abs().max().item<double>(), 1e-6) << bits;
      EXPECT_LT((grad_of(ours, y) - grad_of(theirs, ref)).abs().max().item<double>(), 1e-6);
      EXPECT_LT((s1.grad() - s2.grad()).abs().max().item<double>(),
                1e-6 + 1e-5 * s2.grad().abs().max().item<double>())
          << bits << (per_channel ? " per channel" : " per tensor");
    }
  }
}

}  // namespace
}  // namespace ctmq::quant
