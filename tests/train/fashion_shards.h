// Test helper: Fashion-MNIST (real data) converted to ctmq shards once per
// test process, in a temporary directory that lives until the process ends.
#pragma once

#include <memory>
#include <string>

#include "ctmq/data/shard_builder.h"
#include "test_support.h"

namespace ctmq::testing {

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

}  // namespace ctmq::testing
