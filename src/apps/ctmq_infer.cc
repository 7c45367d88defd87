// ctmq-infer: runs a packed W1A1 model (ctmq-export --format packed) with the
// bit-packed XNOR/AND-popcount engine on a test shard set or a folder of
// images; reports top-1 and images/s. With --reference NETWORK it also runs
// the trained network file through LibTorch (what ctmq-eval evaluates) on the
// same images and reports where the two disagree.
//
// Exit codes: 0 done, 1 an error or bad options (named).
#include <chrono>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "apps/app_options.h"
#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/data/record_source.h"
#include "ctmq/data/shard_dataset.h"
#include "ctmq/deploy/packed_resnet.h"
#include "ctmq/dist/thread_budget.h"
#include "ctmq/model/network_description.h"
#include "ctmq/model/weights_io.h"

namespace {

namespace po = ctmq::apps::po;
using Clock = std::chrono::steady_clock;

// Labelled images in batches, normalised as the packed model was trained.
class Images {
 public:
  virtual ~Images() = default;
  virtual int64_t size() const = 0;
  virtual ctmq::data::Batch batch(int64_t begin, int64_t end) = 0;
};

class ShardImages : public Images {
 public:
  ShardImages(const std::string& manifest, const ctmq::model::Preprocessing& p,
              const std::string& model_path)
      : data_(manifest) {
    data_.use_normalisation(p.mean, p.std_dev, "packed model file " + model_path);
  }
  int64_t size() const override { return data_.size(); }
  ctmq::data::Batch batch(int64_t begin, int64_t end) override {
    std::vector<int64_t> indices;
    for (int64_t i = begin; i < end; ++i) indices.push_back(i);
    return data_.get_batch(indices);
  }

 private:
  ctmq::data::ShardDataset data_;
};

// A folder of CLASS/*.png or *.jpg, read in order through ctmq-shard's image-folder
// source (labels: the class folders in sorted order, as ctmq-shard gives them).
class FolderImages : public Images {
 public:
  FolderImages(const std::string& root, int64_t size, int64_t channels,
               const ctmq::model::Preprocessing& p)
      : preprocessing_(p) {
    ctmq::data::SourceOptions o;
    o.kind = ctmq::data::SourceKind::kImageFolder;
    o.inputs = {root};
    o.channels = channels;
    o.height = size;
    o.width = size;
    o.size_policy = size > 0 ? ctmq::data::SizePolicy::kResize : ctmq::data::SizePolicy::kReject;
    source_ = ctmq::data::open_record_source(o);
  }
  int64_t size() const override { return source_->count(); }
  ctmq::data::Batch batch(int64_t begin, int64_t end) override {
    const ctmq::data::ImageShape shape = source_->shape();
    source_->seek(begin);
    torch::Tensor images = torch::empty({end - begin, shape.channels, shape.height, shape.width});
    torch::Tensor labels = torch::empty({end - begin}, torch::kLong);
    ctmq::data::SourceRecord record;
    for (int64_t i = 0; i < end - begin; ++i) {
      source_->read(record);
      labels[i] = record.label;
      torch::Tensor pixels =
          torch::from_blob(record.pixels.data(), {shape.channels, shape.height, shape.width},
                           torch::kUInt8)
              .to(torch::kFloat)
              .div_(255);
      for (int64_t c = 0; c < shape.channels; ++c)
        pixels[c].sub_(preprocessing_.mean[c]).div_(preprocessing_.std_dev[c]);
      images[i] = pixels;
    }
    return {images, labels};
  }

 private:
  ctmq::model::Preprocessing preprocessing_;
  std::unique_ptr<ctmq::data::RecordSource> source_;
};

ctmq::deploy::KernelPath parse_kernel(const std::string& name) {
  if (name == "auto") return ctmq::deploy::KernelPath::kAuto;
  if (name == "portable") return ctmq::deploy::KernelPath::kPortable;
  if (name == "avx2") return ctmq::deploy::KernelPath::kAvx2;
  CTMQ_FAIL("--kernel " << name << " is not known; use auto, portable or avx2");
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  return ctmq::apps::run_main("ctmq-infer", [&] {
    const ctmq::apps::AppInfo info{
        "ctmq-infer",
        "run a packed W1A1 model (ctmq-export --format packed) on test shards or an image "
        "folder with the bit-packed engine; report top-1 and images/s",
        {"infer"},
        {"ctmq-infer --model c2-w1a1.packed --test-manifest "
         "shards/fashion-mnist/test/manifest.json",
         "ctmq-infer --model c2-w1a1.packed --images photos/ --image-size 28 --output infer.json",
         "ctmq-infer --model c2-w1a1.packed --test-manifest shards/test/manifest.json "
         "--reference runs/a/stages/c2-w1a1/eval-network.pt"}};
    std::string model_path, manifest, images_dir, reference, kernel, output;
    int64_t batch = 256, limit = 0, image_size = 0;
    int threads = 0;
    po::options_description options("Inference ([infer] section)");
    options.add_options()("model", po::value(&model_path)->value_name("FILE")->required(),
                          "the packed model file")("test-manifest",
                                                   po::value(&manifest)->value_name("FILE"),
                                                   "a shard set's manifest.json to evaluate")(
        "images", po::value(&images_dir)->value_name("DIR"),
        "or a folder of CLASS/*.png, *.jpg, *.jpeg (classes in sorted order, as ctmq-shard "
        "labels them)")(
        "image-size", po::value(&image_size)->value_name("N")->default_value(0),
        "with --images: resize every image to N x N (0 = all must have the first one's size)")(
        "batch", po::value(&batch)->value_name("N")->default_value(256), "images per forward pass")(
        "limit", po::value(&limit)->value_name("N")->default_value(0),
        "evaluate the first N images (0 = all)")(
        "threads", po::value(&threads)->value_name("N")->default_value(0),
        "threads (0 = SLURM_CPUS_PER_TASK or the usable CPUs)")(
        "kernel", po::value(&kernel)->value_name("KIND")->default_value("auto"),
        "binary kernel: auto (AVX2 when the CPU has it) | portable | avx2")(
        "reference", po::value(&reference)->value_name("FILE"),
        "a network file: also run it through LibTorch and compare image by image (the stage's "
        "eval-network.pt when ctmq-eval re-estimated BatchNorm, else its final.pt)")(
        "output", po::value(&output)->value_name("FILE"),
        "also write the results as JSON to this file");
    po::variables_map vm;
    if (!ctmq::apps::parse_options(argc, argv, info, options, vm)) return 0;
    CTMQ_CHECK(manifest.empty() != images_dir.empty(),
               "give exactly one of --test-manifest and --images");
    CTMQ_CHECK(batch >= 1, "--batch " << batch << " must be >= 1");
    CTMQ_CHECK(limit >= 0, "--limit " << limit << " must be >= 0");
    const ctmq::deploy::KernelPath path = parse_kernel(kernel);
    const std::string kernel_name =
        path == ctmq::deploy::KernelPath::kAuto ? ctmq::deploy::auto_kernel_path_name() : kernel;
    const ctmq::dist::ThreadBudget budget = ctmq::dist::resolve_threads(threads, 1);
    torch::set_num_threads(budget.threads);

    const ctmq::deploy::PackedResNet net = ctmq::deploy::load_packed_resnet(model_path);
    std::unique_ptr<Images> images;
    if (!manifest.empty()) {
      images = std::make_unique<ShardImages>(manifest, net.preprocessing(), model_path);
    } else {
      images = std::make_unique<FolderImages>(images_dir, image_size, net.options().in_channels,
                                              net.preprocessing());
    }
    std::shared_ptr<ctmq::model::NetworkImpl> ref;
    if (!reference.empty()) {
      ref = ctmq::model::load_network(reference);
      ref->eval();
      const ctmq::model::ModelOptions& r = ref->options();
      const ctmq::model::ModelOptions& p = net.options();
      CTMQ_CHECK(ctmq::model::same_network(ctmq::model::describe_network(r),
                                           ctmq::model::describe_network(p)) &&
                     r.preprocessing == p.preprocessing,
                 "network file " << reference << " is another network than " << model_path
                                 << " (architecture, width, classes, input channels or input "
                                    "normalisation differ); is it the stage that was exported?");
    }
    const int64_t n = limit > 0 ? std::min(limit, images->size()) : images->size();
    CTMQ_CHECK(n > 0, "no images to evaluate");
    int64_t correct = 0, ref_correct = 0, differing = 0;
    double engine_s = 0, reference_s = 0;
    std::vector<torch::Tensor> logit_diffs;  // per image: max |logit difference|
    const auto start = Clock::now();
    for (int64_t begin = 0; begin < n; begin += batch) {
      const ctmq::data::Batch b = images->batch(begin, std::min(n, begin + batch));
      CTMQ_CHECK(b.labels.max().item<int64_t>() < net.options().num_classes,
                 (manifest.empty() ? images_dir : manifest)
                     << " has more classes than the model's " << net.options().num_classes
                     << "; evaluate it with a model trained on these classes");
      auto t0 = Clock::now();
      const torch::Tensor logits = net.forward(b.images, path);
      engine_s += seconds_since(t0);
      const torch::Tensor predicted = logits.argmax(1);
      correct += predicted.eq(b.labels).sum().item<int64_t>();
      if (ref) {
        torch::NoGradGuard no_grad;
        t0 = Clock::now();
        const torch::Tensor ref_logits = ref->forward(b.images);
        reference_s += seconds_since(t0);
        const torch::Tensor ref_predicted = ref_logits.argmax(1);
        ref_correct += ref_predicted.eq(b.labels).sum().item<int64_t>();
        differing += ref_predicted.ne(predicted).sum().item<int64_t>();
        logit_diffs.push_back(std::get<0>((ref_logits - logits).abs().max(1)));
      }
    }
    const double total_s = seconds_since(start);
    const double top1 = 100.0 * static_cast<double>(correct) / static_cast<double>(n);
    std::cout << std::fixed << std::setprecision(2) << "ctmq-infer: top-1 " << top1 << " % on " << n
              << " images; engine " << std::setprecision(1) << static_cast<double>(n) / engine_s
              << " images/s (" << budget.threads << " thread(s), kernel " << kernel_name << "), "
              << total_s << " s in all\n";
    nlohmann::json j;
    j["model"] = model_path;
    j["images"] = n;
    j["top1"] = top1;
    j["engine_images_per_s"] = static_cast<double>(n) / engine_s;
    j["threads"] = budget.threads;
    j["kernel"] = kernel_name;
    if (ref) {
      const double ref_top1 = 100.0 * static_cast<double>(ref_correct) / static_cast<double>(n);
      const torch::Tensor diffs = torch::cat(logit_diffs).to(torch::kDouble);
      const double max_diff = diffs.max().item<double>();
      const double p99_diff = torch::quantile(diffs, 0.99).item<double>();
      const int64_t above = diffs.gt(1e-3).sum().item<int64_t>();
      std::cout << std::setprecision(2) << "ctmq-infer: reference " << reference
                << " (LibTorch float32): top-1 " << ref_top1 << " %, " << std::setprecision(1)
                << static_cast<double>(n) / reference_s << " images/s (" << std::setprecision(2)
                << reference_s / engine_s << "x the engine's time); predictions differ on "
                << differing << " of " << n << " images; max |logit difference| " << std::scientific
                << std::setprecision(2) << max_diff << " (99th percentile over images " << p99_diff
                << "; " << above << " image(s) above 1e-3"
                << (ref->bit_depths() == ctmq::quant::BitDepths{1, 1}
                        ? ", where float rounding moved an activation across the quantizer's "
                          "threshold)\n"
                        : "; the reference is at " + ref->bit_depths().tag() +
                              ", another function than the packed W1A1 model)\n");
      j["reference"] = {{"network", reference},
                        {"top1", ref_top1},
                        {"images_per_s", static_cast<double>(n) / reference_s},
                        {"differing_predictions", differing},
                        {"max_logit_difference", max_diff},
                        {"logit_difference_p99", p99_diff},
                        {"images_logit_difference_above_1e-3", above}};
    }
    if (!output.empty()) ctmq::write_file_atomically(output, j.dump(2) + "\n");
    return 0;
  });
}
