// The trainer's data stall (not a test; figures go to docs/performance.md,
// "Loader: stall time"): one rank trains the same stage on real Fashion-MNIST
// with batches produced on the training thread (--loader-workers 0) and by
// data::BatchLoader's workers (1, 2), in the same run, alternating, and
// reads back from metrics.jsonl how long the steps waited for data per epoch
// (epoch_data_wait_s) and the wall time of the epoch.
//
//   ctmq-bench-loader-stall [--fashion-dir DIR] [--limit 20000] [--epochs 2]
//       [--batch 256] [--width 16] [--threads 2] [--augment crop-flip]
//       [--workers 0,1,2] [--repeats 2]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/app_options.h"
#include "ctmq/common/atomic_file.h"
#include "ctmq/common/log.h"
#include "ctmq/common/run_layout.h"
#include "ctmq/data/shard_builder.h"
#include "ctmq/dist/single_process_communicator.h"
#include "ctmq/train/trainer.h"

namespace {

namespace fs = std::filesystem;

struct Epochs {
  std::map<int64_t, double> wait_s;  // epoch -> data wait (last record of the epoch)
  double wall_s = 0;
  int64_t images = 0;
};

Epochs train_once(const ctmq::train::TrainOptions& o) {
  ctmq::dist::SingleProcessCommunicator comm;
  const auto start = std::chrono::steady_clock::now();
  ctmq::train::train_stage(o, comm);
  Epochs e;
  e.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::istringstream lines(ctmq::read_file(ctmq::RunLayout(o.run_dir).metrics(o.stage)));
  std::string line;
  while (std::getline(lines, line)) {
    const auto record = nlohmann::json::parse(line);
    e.wait_s[record["epoch"].get<int64_t>()] = record["epoch_data_wait_s"].get<double>();
  }
  return e;
}

int run(int argc, char** argv) {
  namespace po = ctmq::apps::po;
  ctmq::apps::AppInfo info{"ctmq-bench-loader-stall", "training data stall vs loader workers", {}};
  po::options_description options("benchmark");
  // clang-format off
  options.add_options()
    ("fashion-dir", po::value<std::string>()->default_value("/usr/share/datasets/fashion-mnist"), "Fashion-MNIST IDX directory")
    ("limit", po::value<int64_t>()->default_value(20000), "training samples")
    ("epochs", po::value<int64_t>()->default_value(2), "epochs per run")
    ("batch", po::value<int64_t>()->default_value(256), "global batch")
    ("width", po::value<int64_t>()->default_value(16), "small-resnet width")
    ("threads", po::value<int>()->default_value(2), "intra-op threads of the rank")
    ("augment", po::value<std::string>()->default_value("crop-flip"), "none | crop-flip")
    ("workers", po::value<std::string>()->default_value("0,1,2"), "loader worker counts to compare")
    ("repeats", po::value<int>()->default_value(2), "runs per worker count, alternating");
  // clang-format on
  po::variables_map vm;
  if (!ctmq::apps::parse_options(argc, argv, info, options, vm)) return 0;
  ctmq::set_log_level(ctmq::LogLevel::kWarning);
  const fs::path work =
      fs::temp_directory_path() / ("ctmq-bench-stall-" + std::to_string(::getpid()));
  fs::remove_all(work);
  ctmq::data::ShardBuildOptions shards;
  shards.source.kind = ctmq::data::SourceKind::kIdx;
  const std::string fashion = vm["fashion-dir"].as<std::string>();
  shards.source.inputs = {fashion + "/train-images-idx3-ubyte.gz",
                          fashion + "/train-labels-idx1-ubyte.gz"};
  shards.output_dir = (work / "shards").string();
  shards.records_per_shard = 20000;
  ctmq::data::build_shards(shards);

  std::vector<int> workers;
  std::stringstream list(vm["workers"].as<std::string>());
  for (std::string w; std::getline(list, w, ',');) workers.push_back(std::stoi(w));
  std::map<int, std::vector<Epochs>> runs;
  for (int r = 0; r < vm["repeats"].as<int>(); ++r) {
    for (int w : workers) {
      ctmq::train::TrainOptions o;
      o.run_dir = (work / ("run-" + std::to_string(r) + "-" + std::to_string(w))).string();
      o.stage = "c0-fp";
      o.train_manifest = shards.output_dir + "/manifest.json";
      o.train_limit = vm["limit"].as<int64_t>();
      o.model.architecture = ctmq::model::Architecture::kSmallResNet;
      o.model.width = vm["width"].as<int64_t>();
      o.bits = {32, 32};
      o.epochs = vm["epochs"].as<int64_t>();
      o.batch = vm["batch"].as<int64_t>();
      o.augment = ctmq::data::parse_augment(vm["augment"].as<std::string>());
      o.threads = vm["threads"].as<int>();
      o.loader_workers = w;
      o.checkpoint_every = 0;
      o.log_every = 10;
      o.resolved_config = "bench\n";
      runs[w].push_back(train_once(o));
    }
  }
  const double samples = static_cast<double>(vm["limit"].as<int64_t>());
  std::printf("| loader workers | run | epoch | data wait s | images/s (stage wall) |\n");
  std::printf("|---:|---:|---:|---:|---:|\n");
  for (int w : workers) {
    for (size_t r = 0; r < runs[w].size(); ++r) {
      const Epochs& e = runs[w][r];
      const double rate = samples * static_cast<double>(e.wait_s.size()) / e.wall_s;
      for (const auto& [epoch, wait] : e.wait_s)
        std::printf("| %d | %zu | %lld | %.3f | %.0f |\n", w, r + 1, static_cast<long long>(epoch),
                    wait, rate);
    }
  }
  std::printf(
      "\nsmall-resnet width %lld, fp32, batch %lld, %lld samples, %s, %d intra-op threads, one "
      "rank; data wait = seconds the training thread waited in BatchLoader::next() per epoch; "
      "images/s over the whole stage call (set-up included).\n",
      static_cast<long long>(vm["width"].as<int64_t>()),
      static_cast<long long>(vm["batch"].as<int64_t>()), static_cast<long long>(samples),
      vm["augment"].as<std::string>().c_str(), vm["threads"].as<int>());
  fs::remove_all(work);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ctmq::apps::run_main("ctmq-bench-loader-stall", [&] { return run(argc, argv); });
}
