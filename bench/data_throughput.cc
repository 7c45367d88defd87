// Data layer throughput (not a test; figures go to docs/performance.md):
//   writing: ctmq-shard's conversion rate from IDX (Fashion-MNIST train, gz)
//            against gunzip alone of the same file, and from a PNG folder
//            against libpng alone decoding the same files;
//   reading: ShardDataset::get_batch (shuffled and in order; checksums and
//            normalisation included) against a plain sequential read() of the
//            same shard bytes.
// Usage: ctmq-bench-data-throughput [--fashion-dir DIR] [--work DIR] [--png-count N]
#include <fcntl.h>
#include <png.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "apps/app_options.h"
#include "ctmq/common/error.h"
#include "ctmq/common/log.h"
#include "ctmq/data/distributed_sampler.h"
#include "ctmq/data/shard_builder.h"
#include "ctmq/data/shard_dataset.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Wall and process CPU time. The dev machine is shared, so rates are given
// per CPU second (stable under load) and per wall second.
struct Timer {
  Clock::time_point wall = Clock::now();
  std::clock_t cpu = std::clock();
};
struct Seconds {
  double wall, cpu;
};
Seconds elapsed(const Timer& t) {
  return {std::chrono::duration<double>(Clock::now() - t.wall).count(),
          static_cast<double>(std::clock() - t.cpu) / CLOCKS_PER_SEC};
}

struct Row {
  std::string what;
  double images;
  double bytes;
  Seconds time;
  std::string baseline;
  double ratio;  // this rate / baseline rate, per CPU second (0: none)
};

void print(const std::vector<Row>& rows) {
  std::printf("| %-46s | %11s | %9s | %11s | %-20s | %8s |\n", "measurement", "images/cpu-s",
              "MB/cpu-s", "images/wall-s", "baseline", "ratio");
  std::printf("|---|---:|---:|---:|---|---:|\n");
  for (const auto& r : rows) {
    char ratio[32] = "";
    if (r.ratio > 0) std::snprintf(ratio, sizeof(ratio), "%.2f", r.ratio);
    std::printf("| %-46s | %11.0f | %9.1f | %11.0f | %-20s | %8s |\n", r.what.c_str(),
                r.images / r.time.cpu, r.bytes / r.time.cpu / 1e6, r.images / r.time.wall,
                r.baseline.c_str(), ratio);
  }
}

double cpu_rate(double n, const Seconds& t) { return n / t.cpu; }

int64_t gunzip_all(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  CTMQ_CHECK(f, "cannot open " << path);
  gzbuffer(f, 1 << 20);
  std::vector<char> buffer(1 << 20);
  int64_t total = 0;
  int got;
  while ((got = gzread(f, buffer.data(), buffer.size())) > 0) total += got;
  gzclose(f);
  return total;
}

int64_t read_all(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  CTMQ_CHECK(fd >= 0, "cannot open " << path);
  std::vector<char> buffer(1 << 20);
  int64_t total = 0;
  ssize_t got;
  while ((got = ::read(fd, buffer.data(), buffer.size())) > 0) total += got;
  ::close(fd);
  return total;
}

int run(int argc, char** argv) {
  namespace po = ctmq::apps::po;
  using namespace ctmq::data;
  ctmq::apps::AppInfo info{"ctmq-bench-data-throughput", "shard writing and reading rates", {}};
  po::options_description options("benchmark");
  options.add_options()(
      "fashion-dir", po::value<std::string>()->default_value("/usr/share/datasets/fashion-mnist"),
      "Fashion-MNIST IDX directory")("work", po::value<std::string>()->default_value(""),
                                     "scratch directory (default: a temp dir)")(
      "png-count", po::value<int64_t>()->default_value(6000), "PNG files to write and convert");
  po::variables_map vm;
  if (!ctmq::apps::parse_options(argc, argv, info, options, vm)) return 0;
  ctmq::set_log_level(ctmq::LogLevel::kWarning);
  torch::set_num_threads(1);
  const std::string fashion = vm["fashion-dir"].as<std::string>();
  std::string work = vm["work"].as<std::string>();
  if (work.empty())
    work = (fs::temp_directory_path() / ("ctmq-bench-" + std::to_string(::getpid()))).string();
  fs::remove_all(work);
  fs::create_directories(work);
  std::vector<Row> rows;

  // 1. IDX -> shards.
  const std::string images = fashion + "/train-images-idx3-ubyte.gz";
  const std::string labels = fashion + "/train-labels-idx1-ubyte.gz";
  Timer timer;
  const int64_t raw_bytes = gunzip_all(images);
  const Seconds gunzip_s = elapsed(timer);
  const double n_idx = static_cast<double>((raw_bytes - 16) / 784);
  ShardBuildOptions idx;
  idx.source.kind = SourceKind::kIdx;
  idx.source.inputs = {images, labels};
  idx.output_dir = work + "/idx";
  idx.records_per_shard = 5000;
  timer = Timer();
  Manifest manifest = build_shards(idx);
  const Seconds idx_s = elapsed(timer);
  const double n = static_cast<double>(manifest.count);
  rows.push_back({"write: IDX (gz) -> shards, 60k Fashion-MNIST", n, n * 784, idx_s, "gunzip alone",
                  cpu_rate(n, idx_s) / cpu_rate(n_idx, gunzip_s)});
  rows.push_back({"  baseline: gunzip of the images file", n_idx, static_cast<double>(raw_bytes),
                  gunzip_s, "", 0});

  // 2. PNG folder -> shards (Fashion-MNIST images as 28x28 gray PNGs).
  const int64_t png_count = vm["png-count"].as<int64_t>();
  ShardDataset train(work + "/idx/manifest.json");
  std::vector<std::string> png_files;
  {
    std::vector<int64_t> idxs(png_count);
    for (int64_t i = 0; i < png_count; ++i) idxs[i] = i;
    Batch batch = train.get_batch(idxs);
    auto pixels = (batch.images * manifest.std[0] + manifest.mean[0])
                      .mul(255)
                      .round()
                      .clamp(0, 255)
                      .to(torch::kUInt8)
                      .contiguous();
    for (int64_t i = 0; i < png_count; ++i) {
      const std::string dir = work + "/png/" + train.class_names()[batch.labels[i].item<int64_t>()];
      fs::create_directories(dir);
      char name[32];
      std::snprintf(name, sizeof(name), "/%06lld.png", static_cast<long long>(i));
      png_image image{};
      image.version = PNG_IMAGE_VERSION;
      image.width = 28;
      image.height = 28;
      image.format = PNG_FORMAT_GRAY;
      CTMQ_CHECK(png_image_write_to_file(&image, (dir + name).c_str(), 0,
                                         pixels[i].data_ptr<uint8_t>(), 0, nullptr),
                 "cannot write PNG");
      png_files.push_back(dir + name);
    }
  }
  int64_t png_bytes = 0;
  for (const auto& f : png_files) png_bytes += static_cast<int64_t>(fs::file_size(f));
  timer = Timer();
  std::vector<uint8_t> decoded(28 * 28);
  for (const auto& f : png_files) {
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    CTMQ_CHECK(png_image_begin_read_from_file(&image, f.c_str()), "libpng: " << image.message);
    image.format = PNG_FORMAT_GRAY;
    decoded.resize(PNG_IMAGE_SIZE(image));
    CTMQ_CHECK(png_image_finish_read(&image, nullptr, decoded.data(), 0, nullptr),
               "libpng: " << image.message);
  }
  const Seconds libpng_s = elapsed(timer);
  ShardBuildOptions png;
  png.source.kind = SourceKind::kImageFolder;
  png.source.inputs = {work + "/png"};
  png.source.channels = 1;
  png.output_dir = work + "/png-shards";
  timer = Timer();
  build_shards(png);
  const Seconds png_s = elapsed(timer);
  const double np = static_cast<double>(png_count);
  rows.push_back({"write: PNG folder -> shards (28x28 gray)", np, static_cast<double>(png_bytes),
                  png_s, "libpng decode alone", cpu_rate(np, png_s) / cpu_rate(np, libpng_s)});
  rows.push_back({"  baseline: libpng decode of the same files", np, static_cast<double>(png_bytes),
                  libpng_s, "", 0});

  // 3. Reading. Warm the page cache first (training reads cached shards after epoch 1).
  int64_t shard_bytes = 0;
  for (const auto& s : manifest.shards) shard_bytes += read_all(work + "/idx/" + s.path);
  timer = Timer();
  for (const auto& s : manifest.shards) read_all(work + "/idx/" + s.path);
  const Seconds plain_s = elapsed(timer);
  const double per_image_bytes = static_cast<double>(shard_bytes) / manifest.count;
  for (bool shuffle : {true, false}) {
    SamplerOptions so;
    so.dataset_size = train.size();
    so.global_batch = 256;
    so.shuffle = shuffle;
    so.seed = 1;
    DistributedSampler sampler(so);
    timer = Timer();
    double read = 0;
    for (int64_t step = 0; step < sampler.steps_per_epoch(); ++step) {
      Batch b = train.get_batch(sampler.indices(0, step));
      read += static_cast<double>(b.labels.size(0));
    }
    const Seconds t = elapsed(timer);
    rows.push_back({std::string("read: get_batch(256), ") + (shuffle ? "shuffled" : "in order") +
                        ", float32 out",
                    read, read * per_image_bytes, t, "sequential read()",
                    cpu_rate(read, t) / cpu_rate(n, plain_s)});
  }
  rows.push_back({"  baseline: sequential read() of the shards", n,
                  static_cast<double>(shard_bytes), plain_s, "", 0});
  print(rows);
  std::printf(
      "\nMB: writing from IDX = decoded pixel bytes; from PNG = PNG file bytes; reading "
      "= shard bytes. ratio = rate / baseline rate, per CPU second. Page cache warm, "
      "one thread (torch::set_num_threads(1)).\n");
  fs::remove_all(work);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ctmq::apps::run_main("ctmq-bench-data-throughput", [&] { return run(argc, argv); });
}
