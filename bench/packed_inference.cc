// Whole-network inference speed of a packed W1A1 model (ctmq-infer's engine,
// deploy/packed_resnet.h) against LibTorch in the same run (a benchmark, not
// a test; figures in docs/performance.md):
//   - the same trained W1A1 network evaluated by LibTorch as ctmq-eval does
//     (float convolutions of the fake-quantized values), and
//   - the same network at full precision (plain float32 convolutions with
//     the hardtanh of the Bi-Real graph): what a float32 deployment runs.
// Models: small-resnet (width 16) on 28x28 Fashion-MNIST test images, and
// ResNet-18 on the same images resized to 224x224 and repeated to 3 channels.
// BatchNorm statistics come from train-mode passes over real images; weights
// are the initial ones (speed does not depend on their values).
// Usage: ctmq-bench-packed-inference [--threads N] [--reps N] [--kernel auto|portable|avx2]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "ctmq/deploy/packed_export.h"
#include "ctmq/deploy/packed_resnet.h"
#include "ctmq/model/network.h"

namespace {

using Clock = std::chrono::steady_clock;

// The first `count` Fashion-MNIST test images, normalised, [count, 1, 28, 28].
torch::Tensor fashion_mnist_test(int64_t count) {
  const char* dir = std::getenv("CTMQ_FASHION_MNIST_DIR");
  const std::string path =
      std::string(dir ? dir : "/usr/share/datasets/fashion-mnist") + "/t10k-images-idx3-ubyte.gz";
  // Decompress with zcat (a benchmark may shell out; the product reads shards).
  const std::string command = "zcat '" + path + "'";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run " + command);
  std::vector<uint8_t> bytes(16 + count * 784);
  const size_t got = fread(bytes.data(), 1, bytes.size(), pipe);
  pclose(pipe);
  if (got != bytes.size()) throw std::runtime_error("short read of " + path);
  torch::Tensor pixels = torch::from_blob(bytes.data() + 16, {count, 1, 28, 28}, torch::kUInt8);
  return pixels.to(torch::kFloat).div(255).sub(0.286).div(0.353);
}

double median_ms(const std::function<void()>& f, int reps) {
  f();  // warm-up
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

struct Row {
  std::string model;
  int64_t batch;
  double engine_ms, w1a1_ms, fp_ms;
};

Row measure(const std::string& label, ctmq::model::ModelOptions o, const torch::Tensor& x, int reps,
            ctmq::deploy::KernelPath path) {
  o.preprocessing.mean.assign(o.in_channels, 0.286);
  o.preprocessing.std_dev.assign(o.in_channels, 0.353);
  torch::manual_seed(1);
  auto net = ctmq::model::make_network(o);
  net->set_bit_depths({1, 1});
  {
    torch::NoGradGuard no_grad;
    net->train();
    for (int i = 0; i < 3; ++i) net->forward(x);  // BatchNorm statistics of real images
  }
  net->eval();
  const ctmq::deploy::PackedResNet engine(
      ctmq::deploy::decode_packed(
          ctmq::deploy::encode_packed(ctmq::deploy::pack_network(*net, label)), label),
      label);
  torch::NoGradGuard no_grad;
  Row row{label, x.size(0), 0, 0, 0};
  row.engine_ms = median_ms([&] { engine.forward(x, path); }, reps);
  row.w1a1_ms = median_ms([&] { net->forward(x); }, reps);
  net->set_bit_depths({32, 32});
  row.fp_ms = median_ms([&] { net->forward(x); }, reps);
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 10;
  auto path = ctmq::deploy::KernelPath::kAuto;
  std::string kernel = "auto";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--kernel")) kernel = argv[i + 1];
  }
  if (kernel == "portable") path = ctmq::deploy::KernelPath::kPortable;
  if (kernel == "avx2") path = ctmq::deploy::KernelPath::kAvx2;
  if (kernel == "auto") kernel = ctmq::deploy::auto_kernel_path_name();
  torch::set_num_threads(threads);

  std::vector<Row> rows;
  const torch::Tensor small = fashion_mnist_test(256);
  ctmq::model::ModelOptions o;
  rows.push_back(measure("small-resnet w16, 28x28", o, small, reps, path));
  rows.push_back(measure("small-resnet w16, 28x28", o, small.slice(0, 0, 1), reps * 20, path));
  ctmq::model::ModelOptions r18;
  r18.architecture = ctmq::model::Architecture::kResNet18;
  r18.in_channels = 3;
  r18.num_classes = 1000;
  const torch::Tensor big =
      torch::upsample_bilinear2d(small.slice(0, 0, 8), {224, 224}, false).repeat({1, 3, 1, 1});
  rows.push_back(measure("resnet18, 224x224", r18, big, std::max(3, reps / 3), path));
  rows.push_back(measure("resnet18, 224x224", r18, big.slice(0, 0, 1), reps, path));

  std::printf("\npacked W1A1 inference, %d thread(s), kernel %s\n", threads, kernel.c_str());
  std::printf("%-26s %5s | %12s %12s %12s | %10s %10s\n", "model", "batch", "engine img/s",
              "W1A1 LibTorch", "FP32 LibTorch", "vs W1A1", "vs FP32");
  for (const Row& r : rows) {
    auto ips = [&](double ms) { return 1000.0 * static_cast<double>(r.batch) / ms; };
    std::printf("%-26s %5lld | %12.1f %12.1f %12.1f | %9.2fx %9.2fx\n", r.model.c_str(),
                static_cast<long long>(r.batch), ips(r.engine_ms), ips(r.w1a1_ms), ips(r.fp_ms),
                r.w1a1_ms / r.engine_ms, r.fp_ms / r.engine_ms);
  }
  return 0;
}
