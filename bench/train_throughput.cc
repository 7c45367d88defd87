// Training throughput and peak memory of one rank: ctmq (LibTorch C++) against
// the same model and quantizers in PyTorch Python eager (bench/train_peer.py),
// measured in the same run. ResNet-20 width 16, 32x32 inputs, SGD (momentum
// 0.9), batch 64 and 256, W=A at 32, 4 and 1 bits.
//
// Each measurement runs in its own process (peak RSS is per process); the
// driver alternates ctmq and PyTorch per configuration and prints a table
// (docs/performance.md, "Training"). PyTorch is measured as written by default
// (NCHW) and with its channels-last recipe (model and images converted). ctmq
// runs channels-last, its default (model::NetworkImpl::set_memory_format), and
// its native-BN step also contiguous (NCHW), so the table shows what the format
// gives, and once more with glibc's default allocator policy instead of ctmq's
// (common/host_allocator.h). The ratios are ctmq's one-rank default (native-BN,
// channels-last, ctmq's allocator policy) over each other figure.
//
//   ctmq-bench-train-throughput [--threads 1] [--steps 5] [--repeats 2]
//       [--python /usr/bin/python3] [--peer bench/train_peer.py]
//       [--device cpu|cuda] [--batches 64,256] [--compiled]
// With --compiled (PyTorch 2.x: --python from pipeline/install-torch.sh) the
// peer is also measured under torch.compile (inductor), a "compiled" column;
// with --device cuda always, at the largest batch only (compiling costs ~30 s
// per configuration), and every timing is bracketed by CUDA synchronisation.
//   ctmq-bench-train-throughput --child BATCH BITS [--native-bn] [--contiguous]
//       [--default-malloc] ...
//       (one measurement)
// "native-BN" is ctmq's model with torch's BatchNorm kernels, the one-rank
// default; "ctmq" alone is the synchronised path several ranks take (see
// docs/training.md).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench_support.h"
#include "ctmq/common/host_allocator.h"
#include "ctmq/model/batch_norm.h"
#include "ctmq/model/network.h"

namespace {

struct Args : ctmq::bench::Timing {
  Args() : Timing{/*threads=*/1, /*steps=*/5, /*repeats=*/2} {}
  int width = 16;
  std::string python = "/usr/bin/python3";
  std::string peer = "bench/train_peer.py";
  bool child = false;
  bool native_bn = false;       // --child only: torch's BatchNorm path instead of the trainer's
  bool contiguous = false;      // --child only: NCHW activations instead of channels-last
  bool default_malloc = false;  // --child only: glibc's default policy, not ctmq's
  int64_t batch = 64;
  int bits = 32;
  std::string device = "cpu";
  bool compiled = false;  // also the peer under torch.compile (always on with cuda)
  std::vector<int64_t> batches = {64, 256};
};

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // Linux: kilobytes
}

// One measurement in this process, as the trainer runs a step: BatchNorm on
// its synchronised path (identity reduction on one rank), SGD momentum 0.9.
nlohmann::json measure(const Args& a) {
  torch::set_num_threads(a.threads);
  torch::manual_seed(0);
  auto net = ctmq::bench::make_resnet20(a.width, a.bits);
  if (a.contiguous) net->set_memory_format(torch::MemoryFormat::Contiguous);
  const torch::Device device(a.device);
  net->to(device);
  if (!a.native_bn) ctmq::model::set_stats_reducer(*net, [](std::vector<torch::Tensor>&) {});
  torch::optim::SGD sgd(net->parameters(),
                        torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4));
  torch::Tensor images = torch::randn({a.batch, 3, 32, 32}).to(device);
  torch::Tensor labels = torch::randint(0, 10, {a.batch}, torch::kInt64).to(device);
  auto synchronize = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  auto step = [&] {
    sgd.zero_grad();
    torch::nn::functional::cross_entropy(net->forward(images), labels).backward();
    sgd.step();
  };
  for (int i = 0; i < 2; ++i) step();
  synchronize();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < a.steps; ++i) step();
  synchronize();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {{"impl", std::string(a.native_bn ? "ctmq-libtorch-native-bn" : "ctmq-libtorch") +
                       (a.contiguous ? "-contiguous" : "")},
          {"torch", TORCH_VERSION},
          {"batch", a.batch},
          {"bits", a.bits},
          {"threads", a.threads},
          {"device", a.device},
          {"steps", a.steps},
          {"images_per_s", static_cast<double>(a.batch) * a.steps / elapsed},
          {"peak_rss_mb", peak_rss_mb()}};
}

// The flags (see the top of this file); nullopt after --help.
std::optional<Args> parse(int argc, char** argv) {
  using ctmq::bench::flag;
  namespace po = ctmq::bench::po;
  Args a;
  po::options_description options("benchmark");
  ctmq::bench::add_timing_flags(options, a);
  options.add_options()("width", flag(a.width), "ResNet-20 width")(
      "device", flag(a.device), "cpu or cuda")("batches", ctmq::bench::list_flag(a.batches),
                                               "batch sizes, comma-separated")(
      "python", flag(a.python), "interpreter with torch for the peer")(
      "compiled", po::bool_switch(&a.compiled),
      "also the peer under torch.compile (inductor; PyTorch 2.x; always on with --device cuda)")(
      "peer", flag(a.peer), "the PyTorch peer script")(
      "child", ctmq::bench::batch_bits_flag(a.batch, a.bits, a.child),
      "run one measurement and print it as JSON")(
      "native-bn", po::bool_switch(&a.native_bn),
      "with --child: torch's BatchNorm instead of the trainer's")(
      "contiguous", po::bool_switch(&a.contiguous),
      "with --child: NCHW activations instead of channels-last")(
      "default-malloc", po::bool_switch(&a.default_malloc),
      "with --child: glibc's default allocator policy instead of ctmq's "
      "(common/host_allocator.h)");
  if (!ctmq::bench::parse_flags(argc, argv, "ctmq-bench-train-throughput",
                                "training throughput and peak memory, ctmq against PyTorch",
                                options))
    return std::nullopt;
  return a;
}

}  // namespace

int main(int argc, char** argv) try {
  const std::optional<Args> parsed = parse(argc, argv);
  if (!parsed) return 0;
  const Args& a = *parsed;
  if (!a.default_malloc) ctmq::keep_freed_host_memory();  // as ctmq-train does (apps::run_main)
  if (a.child) {
    std::cout << measure(a).dump() << std::endl;
    return 0;
  }
  const std::string self = argv[0];
  const std::string common = " --threads " + std::to_string(a.threads) + " --steps " +
                             std::to_string(a.steps) + " --width " + std::to_string(a.width) +
                             " --device " + a.device;
  const bool cuda = a.device == "cuda";
  const bool compiled = cuda || a.compiled;
  std::printf("device %s, peer %s\n", a.device.c_str(), a.python.c_str());
  std::printf(
      "| batch | bits | ctmq img/s | ctmq native-BN img/s | ctmq native-BN NCHW img/s | ctmq "
      "native-BN glibc-default malloc img/s | PyTorch img/s | PyTorch channels-last img/s | ctmq / "
      "PyTorch | ctmq / PyTorch channels-last | ctmq channels-last / NCHW | ctmq policy / "
      "default malloc | ctmq peak RSS MB | PyTorch peak RSS MB |%s\n",
      compiled ? " PyTorch compiled img/s | ctmq / compiled |" : "");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|%s\n",
              compiled ? "---|---|" : "");
  for (int64_t batch : a.batches) {
    for (int bits : {32, 4, 1}) {
      const std::string shape = std::to_string(batch) + " " + std::to_string(bits);
      const std::string peer = a.python + " " + a.peer + " --batch " + std::to_string(batch) +
                               " --bits " + std::to_string(bits) + common;
      // Best img/s per configuration over the repeats, and the largest peak RSS.
      std::map<std::string, double> best, rss;
      auto run = [&](const std::string& name, const std::string& command) {
        const nlohmann::json j = ctmq::bench::run_child(command);
        best[name] = std::max(best[name], j["images_per_s"].get<double>());
        rss[name] = std::max(rss[name], j["peak_rss_mb"].get<double>());
      };
      for (int r = 0; r < a.repeats; ++r) {  // alternate, keep the best of each
        run("sync", self + " --child " + shape + common);
        run("native", self + " --child " + shape + common + " --native-bn");
        run("nchw", self + " --child " + shape + common + " --native-bn --contiguous");
        run("malloc", self + " --child " + shape + common + " --native-bn --default-malloc");
        run("peer", peer);
        run("peer-cl", peer + " --channels-last");
        // On a GPU compiling costs ~30 s per configuration: the largest batch only.
        if (compiled && (!cuda || batch == a.batches.back())) {
          run("compiled", peer + " --compile");
        }
      }
      const std::string tag =
          bits == 32 ? "fp32" : "W" + std::to_string(bits) + "A" + std::to_string(bits);
      const double native = best["native"];
      std::printf(
          "| %ld | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.0f "
          "| %.0f |",
          static_cast<long>(batch), tag.c_str(), best["sync"], native, best["nchw"], best["malloc"],
          best["peer"], best["peer-cl"], native / best["peer"], native / best["peer-cl"],
          native / best["nchw"], native / best["malloc"], rss["sync"], rss["peer"]);
      if (compiled) std::printf(" %.0f | %.2f |", best["compiled"], native / best["compiled"]);
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "ctmq-bench-train-throughput: " << e.what() << "\n";
  return 1;
}
