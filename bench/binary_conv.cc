// PackedBinaryConv (bit-packed XNOR/popcount convolution, signed input coding,
// input packing included) against torch::conv2d in float32 of the same shape
// (weights +-alpha, input +-1), one thread, on the binary 3x3 layers of
// ResNet-18 at 224 px and of ctmq's small-resnet (width 16) at 28 px (not a
// test; figures go to docs/performance.md).
//
// Limits printed with the figures, in multiply-accumulates per clock cycle:
//   float32: AVX2 FMA, 2 units x 8 lanes = 16 MAC/cycle.
//   binary, avx2 path: per 128 bits of one (row, filter) pair the kernel
//     issues 3 vector ops (vpxor, vpshufb, vpaddb), and Zen 2/3 run 4 such ops
//     per cycle (AMD's software optimisation guides; uops.info), so
//     4 / 3 x 128 = 170.7 binary MAC/cycle; vpshufb alone (2/cycle x 128
//     bits) would allow 256.
//   binary, portable path: the software popcount of libgcc (about 12 ALU ops
//     per 64-bit word) plus XOR and add on 4 integer ALUs, about
//     4 / 14 x 64 = 18 binary MAC/cycle (an estimate).
// The clock is measured in the same run: a chain of dependent integer adds
// retires one add per cycle.
//
// Usage: ctmq-bench-binary-conv [--reps N] [--path portable|avx2|auto] [--only TEXT]
//   --only TEXT: only the rows whose shape column contains TEXT (for profiling)
#include "ctmq/deploy/binary_conv.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using ctmq::deploy::BinaryConvGeometry;
using ctmq::deploy::InputCoding;
using ctmq::deploy::KernelPath;
using ctmq::deploy::PackedBinaryConv;

struct Layer {
  const char* name;
  int64_t in, out, size, stride, batch;
};

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

// Cycles per second from a chain of dependent adds (one per cycle).
double measure_clock_hz() {
  double best = 0;
  for (int trial = 0; trial < 3; ++trial) {
    constexpr int64_t kIterations = 2'000'000;  // x 100 adds
    uint64_t x = 0;
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < kIterations; ++i) {
#if defined(__x86_64__)
      asm volatile(".rept 100\n\taddq $1, %0\n\t.endr" : "+r"(x));
#else
      for (int k = 0; k < 100; ++k) asm volatile("" : "+r"(x) : : "memory"), x += 1;
#endif
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, kIterations * 100.0 / seconds);
  }
  return best;
}

template <typename F>
double median_ms(int reps, F&& f) {
  for (int i = 0; i < std::max(2, reps / 10); ++i) f();  // warm-up
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::nth_element(t.begin(), t.begin() + reps / 2, t.end());
  return t[reps / 2];
}

void run_table(const char* title, const std::vector<Layer>& layers, int reps, KernelPath path,
               double hz, double binary_peak, const std::string& only) {
  std::printf("\n%s\n", title);
  std::printf("%-22s %-20s %9s %9s %7s %9s %8s %6s %8s %6s %8s\n", "layer", "shape", "fp32 ms",
              "binary ms", "speedup", "bin GMAC/s", "bin MAC/c", "%peak", "fp MAC/c", "%peak",
              "max|diff|");
  for (const Layer& l : layers) {
    char shape[64];
    std::snprintf(shape, sizeof shape, "%ld->%ld %ldpx s%ld b%ld", static_cast<long>(l.in),
                  static_cast<long>(l.out), static_cast<long>(l.size), static_cast<long>(l.stride),
                  static_cast<long>(l.batch));
    if (std::string(shape).find(only) == std::string::npos) continue;
    torch::manual_seed(1);
    const int64_t out_size = (l.size + 2 - 3) / l.stride + 1;
    const float alpha = 0.05f;
    const torch::Tensor sign_w =
        torch::where(torch::randn({l.out, l.in, 3, 3}) < 0, -1.0, 1.0).to(torch::kFloat32);
    const torch::Tensor w = sign_w * alpha;
    const torch::Tensor x =
        torch::where(torch::randn({l.batch, l.in, l.size, l.size}) < 0, -1.0, 1.0)
            .to(torch::kFloat32);
    const PackedBinaryConv conv =
        PackedBinaryConv::from_weights(sign_w.data_ptr<float>(), {l.in, l.out, 3, l.stride, 1});
    const std::vector<float> scale(l.out, alpha), bias(l.out, 0.0f);
    torch::Tensor out = torch::empty({l.batch, l.out, out_size, out_size});
    torch::Tensor ref;
    const double fp_ms = median_ms(reps, [&] { ref = torch::conv2d(x, w, {}, l.stride, 1); });
    const double bin_ms = median_ms(reps, [&] {
      conv.forward(x.data_ptr<float>(), l.batch, l.size, l.size, InputCoding::kSigned, scale.data(),
                   bias.data(), out.data_ptr<float>(), path);
    });
    const double macs = static_cast<double>(l.batch) * out_size * out_size * l.out * l.in * 9;
    const double bin_per_cycle = macs / (bin_ms * 1e-3) / hz;
    const double fp_per_cycle = macs / (fp_ms * 1e-3) / hz;
    std::printf("%-22s %-20s %9.4f %9.4f %6.2fx %9.1f %8.1f %5.0f%% %8.2f %5.0f%% %8.1e\n", l.name,
                shape, fp_ms, bin_ms, fp_ms / bin_ms, macs / (bin_ms * 1e-3) / 1e9, bin_per_cycle,
                100 * bin_per_cycle / binary_peak, fp_per_cycle, 100 * fp_per_cycle / 16.0,
                (out - ref).abs().max().item<float>());
  }
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 50;
  KernelPath path = KernelPath::kAuto;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--path" && i + 1 < argc) {
      const std::string p = argv[++i];
      if (p == "portable") {
        path = KernelPath::kPortable;
      } else if (p == "avx2") {
        path = KernelPath::kAvx2;
      } else if (p == "auto") {
        path = KernelPath::kAuto;
      } else {
        std::fprintf(stderr, "unknown --path %s (portable|avx2|auto)\n", p.c_str());
        return 2;
      }
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--reps N] [--path portable|avx2|auto] [--only TEXT]\n",
                   argv[0]);
      return 2;
    }
  }
  torch::set_num_threads(1);
  torch::NoGradGuard no_grad;
  const std::string path_name = path == KernelPath::kPortable ? "portable"
                                : path == KernelPath::kAvx2   ? "avx2"
                                                            : ctmq::deploy::auto_kernel_path_name();
  const double binary_peak = path_name == "avx2" ? 4.0 / 3.0 * 128 : 4.0 / 14.0 * 64;
  const double hz = measure_clock_hz();
  std::printf("CPU: %s\nkernel path: %s, 1 thread, median of %d reps\n", cpu_model().c_str(),
              path_name.c_str(), reps);
  std::printf("clock (dependent add chain): %.2f GHz\n", hz / 1e9);
  std::printf("peaks per cycle: binary %.1f MAC (%s), float32 16 MAC (AVX2: 2 FMA x 8 lanes)\n",
              binary_peak,
              path_name == "avx2" ? "3 vector ops per 128-bit pair on 4 pipes"
                                  : "software popcount, estimate");
  try {
    run_table("ResNet-18 at 224 px, binary 3x3 convs, batch 1",
              {{"layer1 conv", 64, 64, 56, 1, 1},
               {"layer2.0.conv1", 64, 128, 56, 2, 1},
               {"layer2 conv", 128, 128, 28, 1, 1},
               {"layer3.0.conv1", 128, 256, 28, 2, 1},
               {"layer3 conv", 256, 256, 14, 1, 1},
               {"layer4.0.conv1", 256, 512, 14, 2, 1},
               {"layer4 conv", 512, 512, 7, 1, 1}},
              reps, path, hz, binary_peak, only);
    const std::vector<std::pair<const char*, Layer>> small = {
        {"layer1.0.conv1", {"", 16, 16, 28, 2, 0}}, {"layer1.0.conv2", {"", 16, 16, 14, 1, 0}},
        {"layer2.0.conv1", {"", 16, 32, 14, 2, 0}}, {"layer2.0.conv2", {"", 32, 32, 7, 1, 0}},
        {"layer3.0.conv1", {"", 32, 64, 7, 2, 0}},  {"layer3.0.conv2", {"", 64, 64, 4, 1, 0}}};
    for (int64_t batch : {1, 16}) {
      std::vector<Layer> layers;
      for (const auto& [name, l] : small)
        layers.push_back({name, l.in, l.out, l.size, l.stride, batch});
      run_table(batch == 1 ? "small-resnet (width 16) at 28 px, batch 1"
                           : "small-resnet (width 16) at 28 px, batch 16",
                layers, reps * (batch == 1 ? 4 : 1), path, hz, binary_peak, only);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ctmq-bench-binary-conv: %s\n", e.what());
    return 1;
  }
  return 0;
}
