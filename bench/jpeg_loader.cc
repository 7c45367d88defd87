// JPEG loader throughput (not a test; figures go to docs/performance.md,
// "Loader: JPEG images"). For one JPEG folder (ROOT/CLASS/*.jpg, e.g. made by
// bench/make_jpeg_folder.py from Fashion-MNIST), measured in the same run:
//   limit:  libjpeg-turbo decoding the folder's files from memory, one
//           thread (decode_jpeg_bytes: the decode every loader must do);
//   ctmq:   encoded shards of the folder (ctmq-shard --record encoded
//           --max-side 0: the same JPEG bytes) read by data::BatchLoader with
//           W workers, each batch ShardDataset::get_training_batch with
//           random-resized-crop (or get_batch: the evaluation transform);
//   peer:   torchvision ImageFolder + DataLoader with the same transform, W
//           worker processes, batch B (bench/loader_peer.py, Debian's python3).
// Rates are images/s of wall time over one epoch after a warm-up batch, and
// per core: divided by W (by 1 for W = 0, the calling thread).
// Usage: ctmq-bench-jpeg-loader --folder ROOT [--workers 1,2] [--batch 64]
//          [--size 224] [--python /usr/bin/python3] [--peer bench/loader_peer.py]
#include <turbojpeg.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/app_options.h"
#include "bench_support.h"
#include "ctmq/common/error.h"
#include "ctmq/common/log.h"
#include "ctmq/data/augment.h"
#include "ctmq/data/batch_loader.h"
#include "ctmq/data/distributed_sampler.h"
#include "ctmq/data/jpeg_image.h"
#include "ctmq/data/shard_builder.h"
#include "ctmq/data/shard_dataset.h"

namespace {

namespace fs = std::filesystem;
using ctmq::bench::Clock;
using ctmq::bench::run_child;
using ctmq::bench::seconds_since;

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// libjpeg-turbo's own rate on the folder's files (bytes in memory, one
// thread): tjDecompress2 to interleaved RGB, nothing else. The limit.
double decode_limit(const std::vector<std::pair<std::string, std::string>>& jpegs,
                    double& pixels_per_image) {
  tjhandle handle = tjInitDecompress();
  CTMQ_CHECK(handle != nullptr, "libjpeg-turbo cannot start a decompressor");
  std::vector<uint8_t> rgb;
  double pixels = 0;
  const auto start = Clock::now();
  for (const auto& [path, bytes] : jpegs) {
    const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
    int width = 0, height = 0, subsampling = 0, colorspace = 0;
    CTMQ_CHECK(tjDecompressHeader3(handle, data, bytes.size(), &width, &height, &subsampling,
                                   &colorspace) == 0,
               path << " is not a JPEG");
    rgb.resize(static_cast<size_t>(width) * height * 3);
    CTMQ_CHECK(
        tjDecompress2(handle, data, bytes.size(), rgb.data(), width, 0, height, TJPF_RGB, 0) == 0,
        path << " does not decode");
    pixels += static_cast<double>(width) * height;
  }
  const double seconds = seconds_since(start);
  tjDestroy(handle);
  pixels_per_image = pixels / static_cast<double>(jpegs.size());
  return static_cast<double>(jpegs.size()) / seconds;
}

// ctmq's decode (decode_jpeg_bytes: the limit's decode plus planar CHW).
double ctmq_decode_rate(const std::vector<std::pair<std::string, std::string>>& jpegs) {
  const auto start = Clock::now();
  for (const auto& [path, bytes] : jpegs) ctmq::data::decode_jpeg_bytes(bytes, path, 3);
  return static_cast<double>(jpegs.size()) / seconds_since(start);
}

// One epoch of training (random-resized-crop) or evaluation batches through
// BatchLoader; images/s of wall time after the first batch.
double ctmq_rate(const ctmq::data::ShardDataset& data, int workers, int64_t batch, bool train) {
  using namespace ctmq::data;
  SamplerOptions so;
  so.dataset_size = data.size();
  so.global_batch = batch;
  so.seed = 1;
  DistributedSampler sampler(so);
  AugmentOptions augment;
  augment.kind = train ? Augment::kRandomResizedCrop : Augment::kNone;
  augment.seed = 1;
  const int64_t steps = sampler.steps_per_epoch();
  BatchLoaderOptions lo;
  lo.first_step = 0;
  lo.last_step = steps;
  lo.workers = workers;
  BatchLoader loader(
      [&](int64_t step) {
        const std::vector<int64_t> indices = sampler.indices(0, step);
        return train ? data.get_training_batch(indices, 0, augment) : data.get_batch(indices);
      },
      lo);
  loader.next();  // warm-up: thread start-up is not counted (as for the peer)
  const auto start = Clock::now();
  int64_t images = 0;
  for (int64_t s = 1; s < steps; ++s) images += loader.next().images.size(0);
  return static_cast<double>(images) / seconds_since(start);
}

int run(int argc, char** argv) {
  namespace po = ctmq::apps::po;
  using namespace ctmq::data;
  ctmq::apps::AppInfo info{
      "ctmq-bench-jpeg-loader", "JPEG loader rate against torchvision and libjpeg-turbo", {}};
  po::options_description options("benchmark");
  options.add_options()("folder", po::value<std::string>()->required(),
                        "JPEG folder ROOT/CLASS/*.jpg")(
      "work", po::value<std::string>()->default_value(""),
      "scratch directory for the shards (default: a temp dir)")(
      "workers", po::value<std::string>()->default_value("1,2"), "worker counts to measure")(
      "batch", po::value<int64_t>()->default_value(64), "images per batch")(
      "size", po::value<int64_t>()->default_value(224), "crop size (px)")(
      "python", po::value<std::string>()->default_value("/usr/bin/python3"),
      "interpreter with torchvision")(
      "peer", po::value<std::string>()->default_value("bench/loader_peer.py"),
      "the torchvision peer script");
  po::variables_map vm;
  if (!ctmq::apps::parse_options(argc, argv, info, options, vm)) return 0;
  ctmq::set_log_level(ctmq::LogLevel::kWarning);
  torch::set_num_threads(1);
  const std::string root = vm["folder"].as<std::string>();
  const int64_t batch = vm["batch"].as<int64_t>();
  const int64_t size = vm["size"].as<int64_t>();
  std::string work = vm["work"].as<std::string>();
  if (work.empty())
    work = (fs::temp_directory_path() / ("ctmq-bench-" + std::to_string(::getpid()))).string();
  fs::remove_all(work);

  ShardBuildOptions build;
  build.source.kind = SourceKind::kImageFolder;
  build.source.inputs = {root};
  build.source.channels = 3;
  build.source.height = size;
  build.source.width = size;
  build.source.record = RecordKind::kEncoded;
  build.source.encoding.max_side = 0;  // the folder's own JPEG bytes
  build.output_dir = work;
  build_shards(build);
  ShardDataset data(work + "/" + kManifestName);

  std::vector<std::pair<std::string, std::string>> jpegs;
  for (const auto& entry : fs::recursive_directory_iterator(root))
    if (entry.is_regular_file()) jpegs.emplace_back(entry.path().string(), read_all(entry.path()));
  CTMQ_CHECK(!jpegs.empty(), "--folder " << root << " holds no files");
  double pixels_per_image = 0;
  const double limit = decode_limit(jpegs, pixels_per_image);
  std::printf("%zu JPEG files, %.0f pixels per image on average\n", jpegs.size(), pixels_per_image);
  std::printf("libjpeg-turbo decode limit (tjDecompress2 to RGB): %.1f images/s per core\n", limit);
  std::printf("ctmq decode (decode_jpeg_bytes, planar):        %.1f images/s per core\n\n",
              ctmq_decode_rate(jpegs));
  std::printf("%-10s %7s %14s %14s %14s %14s %8s %9s\n", "transform", "workers", "ctmq img/s",
              "ctmq /core", "tv img/s", "tv /core", "ratio", "of limit");
  for (const bool train : {true, false}) {
    for (const int workers : ctmq::bench::parse_list<int>(vm["workers"].as<std::string>())) {
      const double cores = static_cast<double>(std::max(1, workers));
      const double ours = ctmq_rate(data, workers, batch, train);
      const nlohmann::json peer = run_child(
          vm["python"].as<std::string>() + " " + vm["peer"].as<std::string>() + " --root " + root +
          " --workers " + std::to_string(workers) + " --batch " + std::to_string(batch) +
          " --size " + std::to_string(size) + " --transform " + (train ? "train" : "eval"));
      const double theirs = peer["images_per_s"].get<double>();
      std::printf("%-10s %7d %14.1f %14.1f %14.1f %14.1f %7.2fx %8.0f%%\n",
                  train ? "train" : "eval", workers, ours, ours / cores, theirs, theirs / cores,
                  ours / theirs, 100.0 * ours / cores / limit);
    }
  }
  std::printf(
      "\ntrain = random-resized-crop (scale 0.08-1, ratio 3/4-4/3) + flip, eval = resize "
      "shorter side to size/0.875 + centre crop; both normalised, float32 NCHW batches of %lld. "
      "ratio = ctmq / torchvision; of limit = ctmq per core / decode limit. Page cache warm.\n",
      static_cast<long long>(batch));
  fs::remove_all(work);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ctmq::apps::run_main("ctmq-bench-jpeg-loader", [&] { return run(argc, argv); });
}
