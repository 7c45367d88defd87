// What the quantizers cost in one training step of ResNet-20 (width 16, 3x32x32,
// one rank), and how far the fused kernels are from the memory-bandwidth limit.
//
// For W=A k bits (k = 4, 1) it times, in one process:
//   - the step itself (forward, cross-entropy, backward, SGD momentum 0.9; torch's
//     BatchNorm, ctmq-train's one-rank default), at k bits and at full precision;
//   - the step's quantizer calls alone, forward and backward through autograd:
//     the 18 quantized convs' input activations (signed quantizer) and weights
//     (DoReFa at 4 bits, binary at 1 bit), fused (quantizers.h) and composed
//     (quant::reference::, the composed ATen passes);
//   - a plain copy (torch copy_ of 256 MB), the machine's one-thread memory rate.
// The limit is the fused activation kernels' bytes per step (forward: read x,
// write y; backward: read grad and x, write grad_x; 20 bytes per element) over
// the copy rate. "fused quantizers / FP step" is the fused quantizers' time
// (activations and weights) over the full-precision step: the quantization
// overhead the step cannot avoid, measured without the step's noise.
// Each figure is the best of --repeats runs.
//
// "paired k-bit / FP step" measures the overhead directly, as the step itself
// sees it: an FP and a k-bit network in this process, their steps alternated
// (--pairs of them); the ratio of each pair's times, its median and a 95%
// distribution-free interval for the median (order statistics, the binomial
// sign-test interval). Both steps
// run the same network: at full precision each quantized conv's input passes
// the activation limit (hardtanh) the quantizer replaces at k bits, so this is
// what quantizing costs over ctmq's own FP step. The machine's drift between
// two adjacent steps is far smaller than between separate runs.
//
//   ctmq-bench-quantizer-throughput [--threads 1] [--batch 64] [--repeats 5] [--steps 3]
//       [--pairs 21]
// docs/performance.md ("Training") has the command and figures.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_support.h"
#include "ctmq/common/host_allocator.h"
#include "ctmq/model/network.h"
#include "ctmq/quant/quantizers.h"

namespace {

struct Args : ctmq::bench::Timing {
  Args() : Timing{/*threads=*/1, /*steps=*/3, /*repeats=*/5} {}
  int64_t batch = 64;
  int pairs = 21;
};

using ctmq::bench::seconds_since;

// Best of `repeats` timings of `body`, in seconds.
double best_of(int repeats, const std::function<void()>& body) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    body();
    best = std::min(best, seconds_since(start));
  }
  return best;
}

// Input and weight shapes of ResNet-20's 18 quantized 3x3 convs (src/ctmq/model/
// resnet.cc: 3 stages x 3 BasicBlocks x 2 convs, planes 16/32/64, stride 2 at the
// first conv of stages 2 and 3; stem, fc and 1x1 shortcuts stay full precision).
struct ConvShapes {
  std::vector<std::vector<int64_t>> inputs, weights;
};

ConvShapes resnet20_convs(int64_t batch, int64_t width) {
  ConvShapes shapes;
  int64_t in = width, side = 32;
  for (int stage = 0; stage < 3; ++stage) {
    const int64_t planes = width << stage;
    for (int block = 0; block < 3; ++block) {
      const bool down = stage > 0 && block == 0;
      shapes.inputs.push_back({batch, in, side, side});
      shapes.weights.push_back({planes, in, 3, 3});
      if (down) side /= 2;
      shapes.inputs.push_back({batch, planes, side, side});
      shapes.weights.push_back({planes, planes, 3, 3});
      in = planes;
    }
  }
  return shapes;
}

using Quantizer = std::function<torch::Tensor(const torch::Tensor&)>;

// Forward and backward (autograd, as in a step) of `quantize` over every tensor.
void forward_backward(const std::vector<torch::Tensor>& xs, const std::vector<torch::Tensor>& gs,
                      const Quantizer& quantize) {
  for (size_t i = 0; i < xs.size(); ++i) {
    xs[i].mutable_grad() = torch::Tensor();
    torch::autograd::backward({quantize(xs[i])}, {gs[i]});
  }
}

// One training step (forward, cross-entropy, backward, SGD) of ResNet-20 at W=A
// `bits`, as ctmq-train runs it on one rank; run() does one step.
class TrainingStep {
 public:
  TrainingStep(int64_t batch, int bits)
      : net_(seeded_resnet20(bits)),
        sgd_(net_->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4)),
        images_(torch::randn({batch, 3, 32, 32})),
        labels_(torch::randint(0, 10, {batch}, torch::kInt64)) {
    run();  // warm-up: allocator, pages, the LSQ/BatchNorm first-batch paths
    run();
  }
  void run() {
    sgd_.zero_grad();
    torch::nn::functional::cross_entropy(net_->forward(images_), labels_).backward();
    sgd_.step();
  }

 private:
  static std::shared_ptr<ctmq::model::NetworkImpl> seeded_resnet20(int bits) {
    torch::manual_seed(0);
    return ctmq::bench::make_resnet20(16, bits);
  }
  std::shared_ptr<ctmq::model::NetworkImpl> net_;
  torch::optim::SGD sgd_;
  torch::Tensor images_, labels_;
};

double step_seconds(const Args& a, int bits) {
  TrainingStep step(a.batch, bits);
  return best_of(a.repeats,
                 [&] {
                   for (int i = 0; i < a.steps; ++i) step.run();
                 }) /
         a.steps;
}

// The median of `ratios` and a distribution-free interval for it with at least
// 95% coverage: the j-th smallest and j-th largest, j the largest rank with
// P(Binomial(n, 1/2) < j) <= 2.5%. Needs n >= 6 (smaller n has no such rank).
struct MedianInterval {
  double median, low, high;
};

MedianInterval median_interval(std::vector<double> ratios) {
  std::sort(ratios.begin(), ratios.end());
  const size_t n = ratios.size();
  const double median = n % 2 == 1 ? ratios[n / 2] : 0.5 * (ratios[n / 2 - 1] + ratios[n / 2]);
  // j: the largest rank with P(X <= j - 1) <= 2.5%, X ~ Binomial(n, 1/2).
  double term = std::pow(0.5, static_cast<double>(n));  // P(X = i)
  double cdf = 0;                                       // P(X <= i)
  size_t j = 1;                                         // n >= 6 (parse): P(X <= 0) = 2^-n <= 2.5%
  for (size_t i = 0; i < n; ++i) {
    cdf += term;
    if (cdf > 0.025) break;
    j = i + 1;
    term *= static_cast<double>(n - i) / static_cast<double>(i + 1);
  }
  return {median, ratios[j - 1], ratios[n - j]};
}

// Per pair: the k-bit step's time over the FP step's time, the two alternated
// (which one runs first alternates too).
std::vector<double> paired_ratios(const Args& a, int bits) {
  TrainingStep fp(a.batch, 32), quantized(a.batch, bits);
  std::vector<double> ratios;
  for (int p = 0; p < a.pairs; ++p) {
    double fp_s = 0, q_s = 0;
    for (int order = 0; order < 2; ++order) {
      const bool fp_now = (order == 0) == (p % 2 == 0);
      const auto start = std::chrono::steady_clock::now();
      (fp_now ? fp : quantized).run();
      (fp_now ? fp_s : q_s) = seconds_since(start);
    }
    ratios.push_back(q_s / fp_s);
  }
  return ratios;
}

// The flags (see the top of this file); nullopt after --help.
std::optional<Args> parse(int argc, char** argv) {
  using ctmq::bench::flag;
  Args a;
  ctmq::bench::po::options_description options("benchmark");
  ctmq::bench::add_timing_flags(options, a);
  options.add_options()("batch", flag(a.batch), "images per step")(
      "pairs", flag(a.pairs), "alternated FP and k-bit steps for the paired overhead (>= 6)");
  if (!ctmq::bench::parse_flags(argc, argv, "ctmq-bench-quantizer-throughput",
                                "what the quantizers cost in one training step", options))
    return std::nullopt;
  if (a.pairs < 6) throw std::invalid_argument("--pairs must be at least 6 (a 95% interval)");
  return a;
}

}  // namespace

int main(int argc, char** argv) try {
  ctmq::keep_freed_host_memory();  // as ctmq-train does (apps::run_main)
  namespace q = ctmq::quant;
  const std::optional<Args> parsed = parse(argc, argv);
  if (!parsed) return 0;
  const Args& a = *parsed;
  torch::set_num_threads(a.threads);
  const ConvShapes shapes = resnet20_convs(a.batch, 16);

  const torch::Tensor src = torch::randn({64 << 20});  // 256 MB
  torch::Tensor dst = torch::empty_like(src);
  const double copy_s = best_of(a.repeats, [&] { dst.copy_(src); });
  const double copy_gbs = 2.0 * src.numel() * 4 / copy_s / 1e9;  // read + write

  torch::manual_seed(1);
  std::vector<torch::Tensor> xs, gxs, ws, gws;
  int64_t elements = 0;
  for (const auto& s : shapes.inputs) {
    xs.push_back((torch::randn(s) * 1.2).requires_grad_(true));
    gxs.push_back(torch::randn(s));
    elements += xs.back().numel();
  }
  for (const auto& s : shapes.weights) {
    ws.push_back((torch::randn(s) * 0.1).requires_grad_(true));
    gws.push_back(torch::randn(s));
  }
  const double bytes = 20.0 * elements;
  const double limit_ms = bytes / (copy_gbs * 1e9) * 1e3;
  std::printf(
      "copy rate %.1f GB/s (one thread, 256 MB); quantized activations %.2f M elements "
      "per step, fused kernels move %.0f MB per step: limit %.1f ms\n",
      copy_gbs, elements / 1e6, bytes / 1e6, limit_ms);
  const double fp_step = step_seconds(a, 32);
  std::printf("full-precision step %.1f ms (batch %ld)\n", fp_step * 1e3,
              static_cast<long>(a.batch));
  std::printf(
      "| bits | step ms | fused activations ms | composed activations ms | fused / composed | "
      "fused weights ms | composed weights ms | fused quantizers / FP step | limit ms | "
      "FP activation limit ms | (fused - FP limit + weights) / FP step | "
      "paired k-bit / FP step (95%% interval) |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int bits : {4, 1}) {
    const Quantizer fused_a = [&](const torch::Tensor& x) { return q::signed_activation(x, bits); };
    const Quantizer composed_a = [&](const torch::Tensor& x) {
      return q::reference::signed_activation(x, bits);
    };
    const Quantizer fused_w = [&](const torch::Tensor& w) {
      return bits == 1 ? q::binary_weight(w)
                       : q::dorefa_weight(w, bits, q::Granularity::kPerTensor);
    };
    const Quantizer composed_w = [&](const torch::Tensor& w) {
      return bits == 1 ? q::reference::binary_weight(w)
                       : q::reference::dorefa_weight(w, bits, q::Granularity::kPerTensor);
    };
    forward_backward(xs, gxs, fused_a);  // warm-up: allocator and pages
    forward_backward(xs, gxs, composed_a);
    const Quantizer limit_a = [&](const torch::Tensor& x) {
      return q::activation_limit(x, q::ActivationQuantizer::kSigned);
    };
    forward_backward(xs, gxs, limit_a);
    const double la = best_of(a.repeats, [&] { forward_backward(xs, gxs, limit_a); });
    const double fa = best_of(a.repeats, [&] { forward_backward(xs, gxs, fused_a); });
    const double ca = best_of(a.repeats, [&] { forward_backward(xs, gxs, composed_a); });
    const double fw = best_of(a.repeats, [&] { forward_backward(ws, gws, fused_w); });
    const double cw = best_of(a.repeats, [&] { forward_backward(ws, gws, composed_w); });
    const double step = step_seconds(a, bits);
    const MedianInterval paired = median_interval(paired_ratios(a, bits));
    std::printf(
        "| W%dA%d | %.1f | %.1f | %.1f | %.2f | %.2f | %.2f | %.1f%% | %.1f | %.1f | %.1f%% | "
        "%.3f (%.3f-%.3f) |\n",
        bits, bits, step * 1e3, fa * 1e3, ca * 1e3, fa / ca, fw * 1e3, cw * 1e3,
        100.0 * (fa + fw) / fp_step, limit_ms, la * 1e3, 100.0 * (fa - la + fw) / fp_step,
        paired.median, paired.low, paired.high);
    std::fflush(stdout);
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "ctmq-bench-quantizer-throughput: " << e.what() << "\n";
  return 1;
}
