// Helpers of the training tests (tests/train, tests/mpi).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "ctmq/common/run_layout.h"
#include "ctmq/data/shard_builder.h"
#include "ctmq/model/weights_io.h"
#include "ctmq/train/train_options.h"
#include "test_support.h"

namespace ctmq::testing {

// Fashion-MNIST (real data) converted to ctmq shards once per test process,
// in a temporary directory that lives until the process ends.
// Path of manifest.json of Fashion-MNIST's training split (60,000 records).
// Not thread-safe; MPI tests call it on every rank (each rank builds its own).
inline std::string fashion_mnist_train_manifest() {
  static std::unique_ptr<TempDir> dir;
  if (!dir) {
    dir = std::make_unique<TempDir>();
    data::ShardBuildOptions options;
    options.source.kind = data::SourceKind::kIdx;
    options.source.inputs = {fashion_mnist_dir() + "/train-images-idx3-ubyte.gz",
                             fashion_mnist_dir() + "/train-labels-idx1-ubyte.gz"};
    options.output_dir = dir->path() + "/train";
    options.records_per_shard = 20000;
    data::build_shards(options);
  }
  return dir->path() + "/train/manifest.json";
}

// Parameters and buffers of RUN/stages/STAGE/final.pt, by name.
inline std::map<std::string, torch::Tensor> final_state(const std::string& run_dir,
                                                        const std::string& stage) {
  auto net = model::load_network(RunLayout(run_dir).final_weights(stage));
  std::map<std::string, torch::Tensor> state;
  for (const auto& p : net->named_parameters()) state[p.key()] = p.value().detach();
  for (const auto& b : net->named_buffers()) state[b.key()] = b.value();
  return state;
}

// The stage the training tests train: a small ResNet of `width` on the first
// `images` Fashion-MNIST training images at W/A `bits` (stage "c1-" + the bits'
// tag), `epochs` epochs of global batch `batch` from `seed`, one thread, a
// checkpoint every `checkpoint_every` steps (0: only at the end) and a metrics
// record every `log_every`; every other field is TrainOptions' default.
inline train::TrainOptions small_resnet_stage(const std::string& run_dir, quant::BitDepths bits,
                                              int64_t width, int64_t images, int64_t epochs,
                                              int64_t batch, uint64_t seed,
                                              int64_t checkpoint_every, int64_t log_every) {
  train::TrainOptions o;
  o.run_dir = run_dir;
  o.stage = "c1-" + bits.tag();
  o.train_manifest = fashion_mnist_train_manifest();
  o.train_limit = images;
  o.model.architecture = model::Architecture::kSmallResNet;
  o.model.width = width;
  o.bits = bits;
  o.epochs = epochs;
  o.batch = batch;
  o.seed = seed;
  o.threads = 1;
  o.checkpoint_every = checkpoint_every;
  o.log_every = log_every;
  return o;
}

}  // namespace ctmq::testing
