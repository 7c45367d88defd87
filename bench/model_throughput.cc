// Training and inference throughput of ctmq's networks on CPU (not a test;
// figures go to docs/models.md): small-resnet at 28x28 (batch 64), one
// forward/backward/SGD step per iteration, at fp, w4a4 and w1a1, and the same
// full-precision network as a plain torch::nn model as a baseline for the
// overhead of ctmq's modules.
// Usage: ctmq-bench-model-throughput [--threads N] [--steps N] [--width W]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ctmq/common/host_allocator.h"
#include "ctmq/model/network.h"

namespace {

using Clock = std::chrono::steady_clock;

// The small ResNet's full-precision graph in plain torch::nn modules.
struct PlainBlockImpl : torch::nn::Module {
  PlainBlockImpl(int64_t in, int64_t out, int64_t stride) {
    using namespace torch::nn;
    conv1 = register_module(
        "conv1", Conv2d(Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)));
    bn1 = register_module("bn1", BatchNorm2d(out));
    conv2 = register_module("conv2", Conv2d(Conv2dOptions(out, out, 3).padding(1).bias(false)));
    bn2 = register_module("bn2", BatchNorm2d(out));
    if (stride != 1 || in != out) {
      down = register_module(
          "down", Sequential(Conv2d(Conv2dOptions(in, out, 1).stride(stride).bias(false)),
                             BatchNorm2d(out)));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor out = torch::relu(bn1(conv1(x)));
    out = bn2(conv2(out));
    return torch::relu(out + (down ? down->forward(x) : x));
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential down{nullptr};
};
TORCH_MODULE(PlainBlock);

struct PlainNetImpl : torch::nn::Module {
  explicit PlainNetImpl(int64_t w) {
    using namespace torch::nn;
    conv = register_module("conv", Conv2d(Conv2dOptions(1, w, 3).padding(1).bias(false)));
    bn = register_module("bn", BatchNorm2d(w));
    b1 = register_module("b1", PlainBlock(w, w, 2));
    b2 = register_module("b2", PlainBlock(w, 2 * w, 2));
    b3 = register_module("b3", PlainBlock(2 * w, 4 * w, 2));
    fc = register_module("fc", Linear(4 * w, 10));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(bn(conv(x)));
    x = b3(b2(b1(x)));
    return fc(torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  PlainBlock b1{nullptr}, b2{nullptr}, b3{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(PlainNet);

template <typename Net>
double train_images_per_second(Net& net, int steps, int64_t batch) {
  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({batch, 1, 28, 28});
  const torch::Tensor y = torch::randint(0, 10, {batch});
  net->train();
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  auto step = [&] {
    sgd.zero_grad();
    torch::cross_entropy_loss(net->forward(x), y).backward();
    sgd.step();
  };
  for (int i = 0; i < 3; ++i) step();  // warm-up
  const auto start = Clock::now();
  for (int i = 0; i < steps; ++i) step();
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  return steps * batch / s;
}

}  // namespace

int main(int argc, char** argv) {
  ctmq::keep_freed_host_memory();  // as ctmq-train does (apps::run_main)
  int threads = 2, steps = 30;
  int64_t width = 16;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--width")) width = std::atoll(argv[i + 1]);
  }
  torch::set_num_threads(threads);
  const int64_t batch = 64;
  std::printf("small-resnet width %lld, batch %lld, %d threads, %d steps\n",
              static_cast<long long>(width), static_cast<long long>(batch), threads, steps);
  std::printf("| network | train images/s |\n|---|---|\n");
  PlainNet plain(width);
  std::printf("| plain torch::nn, fp | %.0f |\n", train_images_per_second(plain, steps, batch));
  for (ctmq::quant::BitDepths bits :
       {ctmq::quant::BitDepths{}, ctmq::quant::BitDepths{4, 4}, ctmq::quant::BitDepths{1, 1}}) {
    ctmq::model::ModelOptions options;
    options.width = width;
    auto net = ctmq::model::make_network(options);
    net->set_bit_depths(bits);
    std::printf("| ctmq small-resnet, %s | %.0f |\n", bits.tag().c_str(),
                train_images_per_second(net, steps, batch));
  }
  return 0;
}
