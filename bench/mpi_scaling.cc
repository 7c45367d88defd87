// Two MPI ranks of one thread against one rank of two threads, at the same
// global batch, on the trainer's step (docs/performance.md, "Training on two
// MPI ranks"); and the allreduce cost model's alpha and beta fitted to this
// machine.
//
// The step is bench/train_throughput.cc's (ResNet-20 width 16, 3x32x32 random
// inputs, SGD momentum 0.9) with the trainer's distributed parts: BatchNorm
// statistics summed over ranks when there are several (model::set_stats_reducer,
// the default --sync-batch-norm multi-rank) and dist::GradientAllreducer, its
// buckets started during backward (--overlap-allreduce true, the trainer's
// default) or after it. On one rank BatchNorm is torch's native kernel, as in
// the trainer.
//
// With --sync-batch-norm per-rank the ranks keep their own statistics (DDP's
// default; the trainer's [train] sync-batch-norm = per-rank): no BatchNorm
// communication.
//
// Efficiency = (img/s, 2 ranks x 1 thread) / (img/s, 1 rank x 2 threads).
// The 2-rank step is split into compute (everything else), BatchNorm-sync
// allreduces (time inside the reducer, including waiting for the other rank)
// and the gradient allreduce (GradientAllreducer::average_gradients: with
// overlap, what is left to wait for after backward).
//
// Allreduce model (ring; Thakur, Rabenseifner & Gropp 2005, "Optimization of
// collective communication operations in MPICH"; the ring's bandwidth term is
// optimal, Patarasuk & Yuan 2009):
//   t(n, p) = 2 (p - 1) alpha + 2 (p - 1) / p * n * beta    (n bytes, p ranks)
// fitted by least squares on relative error to float32 allreduces of 4 B to
// 16 MiB through the Communicator (the trainer's path). With p = 2 every
// algorithm Open MPI may pick has this form (one exchange of n/2 both ways
// twice), so the fit reads as the latency and inverse bandwidth of this
// machine's shared-memory transport.
//
//   ctmq-bench-mpi-scaling [--batch 64] [--bits 32,1] [--steps 10] [--repeats 3]
//       [--width 16] [--mpirun mpirun] [--sync-batch-norm multi-rank|per-rank]
//       [--overlap-allreduce true|false] [--allreduce-bucket-mb 4]
//                                               (driver: launches the runs below)
//   mpirun -n R ctmq-bench-mpi-scaling --child-step BATCH BITS --threads T [--steps N]
//   mpirun -n 2 ctmq-bench-mpi-scaling --child-allreduce
// Children print one JSON line on rank 0.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench_support.h"
#include "ctmq/common/error.h"
#include "ctmq/common/host_allocator.h"
#include "ctmq/dist/gradient_allreducer.h"
#include "ctmq/dist/mpi_context.h"
#include "ctmq/model/batch_norm.h"
#include "ctmq/model/network.h"

namespace {

using ctmq::bench::Clock;
using ctmq::bench::run_child;
using ctmq::bench::seconds_since;

struct Args : ctmq::bench::Timing {
  Args() : Timing{/*threads=*/1, /*steps=*/10, /*repeats=*/3} {}
  enum class Mode { kDriver, kStep, kAllreduce } mode = Mode::kDriver;
  int width = 16;
  int64_t batch = 64;  // global
  int bits = 32;
  std::vector<int> bit_list = {32, 1};
  std::string mpirun = "mpirun";
  // The trainer's [train] sync-batch-norm on the ranks: multi-rank
  // (synchronised when there are several) or per-rank (DDP's default).
  std::string sync_batch_norm = "multi-rank";
  // The trainer's [train] overlap-allreduce and allreduce-bucket-mb.
  bool overlap_allreduce = true;
  double allreduce_bucket_mb = 4;
};

// Mean over ranks of `values` (each rank's own timings).
std::vector<double> mean_over_ranks(ctmq::dist::Communicator& comm, std::vector<double> values) {
  std::vector<torch::Tensor> t{torch::tensor(values, torch::kFloat64)};
  comm.allreduce_sum(t);
  t[0].div_(comm.size());
  return std::vector<double>(t[0].data_ptr<double>(), t[0].data_ptr<double>() + values.size());
}

// One configuration, on every rank of the job: global batch a.batch split evenly.
nlohmann::json measure_step(ctmq::dist::Communicator& comm, const Args& a) {
  CTMQ_CHECK(a.batch % comm.size() == 0, "--child-step: global batch "
                                             << a.batch << " does not split over " << comm.size()
                                             << " ranks; pick a multiple of the rank count");
  const int64_t local_batch = a.batch / comm.size();
  torch::set_num_threads(a.threads);
  torch::manual_seed(0);
  auto net = ctmq::bench::make_resnet20(a.width, a.bits);
  double bn_sync_s = 0, bn_bytes = 0;
  int64_t bn_calls = 0;
  CTMQ_CHECK(a.sync_batch_norm == "multi-rank" || a.sync_batch_norm == "per-rank",
             "--sync-batch-norm " << a.sync_batch_norm << ": use multi-rank or per-rank");
  if (comm.size() > 1 && a.sync_batch_norm == "multi-rank") {
    ctmq::model::set_stats_reducer(*net, [&](std::vector<torch::Tensor>& t) {
      const auto start = Clock::now();
      comm.allreduce_sum(t);
      bn_sync_s += seconds_since(start);
      for (const auto& x : t) bn_bytes += static_cast<double>(x.numel() * x.element_size());
      ++bn_calls;
    });
  }
  net->train();
  ctmq::dist::GradientAllreducer allreducer(comm, net->parameters(),
                                            static_cast<int64_t>(a.allreduce_bucket_mb * (1 << 20)),
                                            a.overlap_allreduce);
  double grad_bytes = 0;
  for (const auto& p : net->parameters())
    if (p.requires_grad()) grad_bytes += static_cast<double>(p.numel() * p.element_size());
  torch::optim::SGD sgd(net->parameters(),
                        torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4));
  torch::manual_seed(1 + comm.rank());
  torch::Tensor images = torch::randn({local_batch, 3, 32, 32});
  torch::Tensor labels = torch::randint(0, 10, {local_batch}, torch::kInt64);
  double grad_s = 0;
  auto step = [&] {
    sgd.zero_grad();
    torch::nn::functional::cross_entropy(net->forward(images), labels).backward();
    const auto start = Clock::now();
    allreducer.average_gradients();
    grad_s += seconds_since(start);
    sgd.step();
  };
  for (int i = 0; i < 3; ++i) step();  // the first steps initialise LSQ steps and caches
  bn_sync_s = grad_s = bn_bytes = 0;
  bn_calls = 0;
  comm.barrier();
  const auto start = Clock::now();
  for (int i = 0; i < a.steps; ++i) step();
  comm.barrier();
  const double elapsed = seconds_since(start);
  const auto mean = mean_over_ranks(comm, {bn_sync_s, grad_s});
  const double step_ms = 1e3 * elapsed / a.steps;
  const double bn_ms = 1e3 * mean[0] / a.steps, grad_ms = 1e3 * mean[1] / a.steps;
  return {{"ranks", comm.size()},
          {"threads", a.threads},
          {"global_batch", a.batch},
          {"bits", a.bits},
          {"steps", a.steps},
          {"images_per_s", static_cast<double>(a.batch) * a.steps / elapsed},
          {"step_ms", step_ms},
          {"compute_ms", step_ms - bn_ms - grad_ms},
          {"bn_sync_ms", bn_ms},
          {"grad_allreduce_ms", grad_ms},
          {"bn_allreduces_per_step", bn_calls / a.steps},
          {"bn_bytes_per_step", bn_bytes / a.steps},
          {"grad_bytes_per_step", grad_bytes},
          {"grad_buckets", allreducer.num_buckets()}};
}

// Per message size: the best over 5 rounds of the mean time of `reps`
// back-to-back float32 allreduces. Then t = c0 + c1 * n fitted with weights
// 1/t^2 (relative error), alpha = c0 / (2 (p-1)), beta = c1 / (2 (p-1) / p).
nlohmann::json measure_allreduce(ctmq::dist::Communicator& comm) {
  const int p = comm.size();
  std::vector<double> sizes, times;
  for (int64_t bytes = 4; bytes <= (16 << 20); bytes *= 4) {
    torch::Tensor buffer = torch::ones({bytes / 4}, torch::kFloat32);
    std::vector<torch::Tensor> t{buffer};
    const int reps = static_cast<int>(std::clamp<int64_t>((64 << 20) / bytes, 5, 2000));
    for (int i = 0; i < 3; ++i) comm.allreduce_sum(t);
    double best = 1e30;
    for (int round = 0; round < 5; ++round) {
      comm.barrier();
      const auto start = Clock::now();
      for (int i = 0; i < reps; ++i) comm.allreduce_sum(t);
      best = std::min(best, seconds_since(start) / reps);
    }
    best = mean_over_ranks(comm, {best})[0];
    sizes.push_back(static_cast<double>(bytes));
    times.push_back(best);
  }
  // Weighted least squares for t = c0 + c1 n, weights w = 1 / t^2.
  double sw = 0, swx = 0, swy = 0, swxx = 0, swxy = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const double w = 1.0 / (times[i] * times[i]);
    sw += w;
    swx += w * sizes[i];
    swy += w * times[i];
    swxx += w * sizes[i] * sizes[i];
    swxy += w * sizes[i] * times[i];
  }
  const double c1 = (sw * swxy - swx * swy) / (sw * swxx - swx * swx);
  const double c0 = (swy - c1 * swx) / sw;
  const double alpha = c0 / (2.0 * (p - 1));
  const double beta = c1 / (2.0 * (p - 1) / p);
  nlohmann::json rows = nlohmann::json::array();
  for (size_t i = 0; i < sizes.size(); ++i)
    rows.push_back(
        {{"bytes", sizes[i]}, {"seconds", times[i]}, {"model_seconds", c0 + c1 * sizes[i]}});
  return {{"ranks", p}, {"alpha_s", alpha}, {"beta_s_per_byte", beta}, {"sizes", rows}};
}

// The flags (see the top of this file); nullopt after --help.
std::optional<Args> parse(int argc, char** argv) {
  using ctmq::bench::flag;
  namespace po = ctmq::bench::po;
  Args a;
  bool step = false, allreduce = false;
  po::options_description options("benchmark");
  ctmq::bench::add_timing_flags(options, a);
  options.add_options()("batch", flag(a.batch), "global batch")(
      "bits", ctmq::bench::list_flag(a.bit_list), "W = A bit depths, comma-separated")(
      "width", flag(a.width), "ResNet-20 width")("mpirun", flag(a.mpirun), "the MPI launcher")(
      "sync-batch-norm", flag(a.sync_batch_norm),
      "multi-rank (BatchNorm statistics summed over the ranks, the trainer's default) | per-rank "
      "(each rank its own, as DDP)")("overlap-allreduce", flag(a.overlap_allreduce),
                                     "start each gradient bucket's allreduce during backward "
                                     "(the trainer's default); false = after backward")(
      "allreduce-bucket-mb", flag(a.allreduce_bucket_mb), "MiB of gradients per bucket")(
      "child-step", ctmq::bench::batch_bits_flag(a.batch, a.bits, step),
      "time the step on every rank of this job and print JSON")(
      "child-allreduce", po::bool_switch(&allreduce),
      "fit the allreduce model on this job and print JSON");
  if (!ctmq::bench::parse_flags(argc, argv, "ctmq-bench-mpi-scaling",
                                "two MPI ranks of one thread against one rank of two threads",
                                options))
    return std::nullopt;
  if (step) a.mode = Args::Mode::kStep;
  if (allreduce) a.mode = Args::Mode::kAllreduce;
  return a;
}

int drive(const Args& a, const std::string& self) {
  // --bind-to none: two ranks share the machine's two cores as the one
  // two-thread rank does; as root Open MPI needs its explicit consent.
  std::string launch = a.mpirun + " --oversubscribe --bind-to none" +
                       (geteuid() == 0 ? " --allow-run-as-root" : "") + " -x OMP_NUM_THREADS=1 -n ";
  const auto ar = run_child(launch + "2 " + self + " --child-allreduce");
  const double alpha = ar["alpha_s"], beta = ar["beta_s_per_byte"];
  std::printf("allreduce, 2 ranks (float32, Communicator::allreduce_sum)\n");
  std::printf("| bytes | measured us | model us |\n|---|---|---|\n");
  for (const auto& row : ar["sizes"])
    std::printf("| %.0f | %.1f | %.1f |\n", row["bytes"].get<double>(),
                1e6 * row["seconds"].get<double>(), 1e6 * row["model_seconds"].get<double>());
  std::printf(
      "fit t(n,p) = 2(p-1) alpha + 2(p-1)/p n beta: alpha = %.2f us, beta = %.3f ns/B "
      "(%.2f GB/s)\n\n",
      1e6 * alpha, 1e9 * beta, 1e-9 / beta);
  std::fflush(stdout);

  std::printf(
      "| bits | global batch | 1x2 img/s | 2x1 img/s | efficiency | 2x1 step ms | compute ms | "
      "BN-sync ms (calls) | grad allreduce ms (MiB, buckets) | model comm ms | bound |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  const std::string common = " --steps " + std::to_string(a.steps) + " --width " +
                             std::to_string(a.width) + " --sync-batch-norm " + a.sync_batch_norm +
                             " --overlap-allreduce " + (a.overlap_allreduce ? "true" : "false") +
                             " --allreduce-bucket-mb " + std::to_string(a.allreduce_bucket_mb) +
                             " --child-step " + std::to_string(a.batch);
  for (int bits : a.bit_list) {
    nlohmann::json one, two;
    double best_one = 0, best_two = 0;
    for (int r = 0; r < a.repeats; ++r) {  // alternate, keep the best of each
      auto o =
          run_child(launch + "1 " + self + common + " " + std::to_string(bits) + " --threads 2");
      auto t =
          run_child(launch + "2 " + self + common + " " + std::to_string(bits) + " --threads 1");
      if (o["images_per_s"].get<double>() > best_one) best_one = o["images_per_s"], one = o;
      if (t["images_per_s"].get<double>() > best_two) best_two = t["images_per_s"], two = t;
    }
    // Communication the model predicts for one 2-rank step, and the best
    // efficiency it allows if compute split perfectly (2x1 compute = 1x2 step).
    const double p = 2;
    const double bn_calls = two["bn_allreduces_per_step"].get<double>();
    const double buckets = two["grad_buckets"].get<double>();
    const double bytes =
        two["bn_bytes_per_step"].get<double>() + two["grad_bytes_per_step"].get<double>();
    const double model_s =
        (bn_calls + buckets) * 2 * (p - 1) * alpha + 2 * (p - 1) / p * bytes * beta;
    const double one_step_s = one["step_ms"].get<double>() / 1e3;
    const std::string tag =
        bits == 32 ? "fp32" : "W" + std::to_string(bits) + "A" + std::to_string(bits);
    std::printf(
        "| %s | %ld | %.0f | %.0f | %.2f | %.1f | %.1f | %.1f (%.0f) | %.1f (%.2f, %.0f) | "
        "%.2f | %.2f |\n",
        tag.c_str(), static_cast<long>(a.batch), best_one, best_two, best_two / best_one,
        two["step_ms"].get<double>(), two["compute_ms"].get<double>(),
        two["bn_sync_ms"].get<double>(), bn_calls, two["grad_allreduce_ms"].get<double>(),
        two["grad_bytes_per_step"].get<double>() / (1 << 20), buckets, 1e3 * model_s,
        one_step_s / (one_step_s + model_s));
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  ctmq::keep_freed_host_memory();  // as ctmq-train does (apps::run_main)
  const std::optional<Args> parsed = parse(argc, argv);
  if (!parsed) return 0;
  const Args& a = *parsed;
  if (a.mode == Args::Mode::kDriver) {
    char self[4096] = {};
    const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    return drive(a, n > 0 ? std::string(self, n) : std::string(argv[0]));
  }
  ctmq::dist::MpiContext comm(&argc, &argv);
  const nlohmann::json result =
      a.mode == Args::Mode::kStep ? measure_step(comm, a) : measure_allreduce(comm);
  if (comm.rank() == 0) std::cout << result.dump() << std::endl;
  return 0;
} catch (const std::exception& e) {
  std::cerr << "ctmq-bench-mpi-scaling: " << e.what() << "\n";
  return 1;
}
