// Read side of the shard format (docs/shard-format.md): random access to the
// records of a data set described by a manifest.
//
// Records are read on demand (never the whole set at once) and their
// checksums verified; a bad shard gives a ctmq::Error naming the file and the
// record. Thread safety: const methods may be called concurrently.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace ctmq::data {

// A batch as the trainer consumes it.
struct Batch {
  torch::Tensor images;  // float32 [N, C, H, W], normalised with mean()/std_dev()
  torch::Tensor labels;  // int64 [N]
};

class ShardDataset {
 public:
  // Opens `manifest_path` and every shard it names; checks headers.
  explicit ShardDataset(const std::string& manifest_path);
  ~ShardDataset();
  ShardDataset(ShardDataset&&) noexcept;

  int64_t size() const;
  int64_t channels() const;
  int64_t height() const;
  int64_t width() const;
  int64_t num_classes() const;
  const std::vector<std::string>& class_names() const;
  // float [C]: the normalised value of a black (0) pixel, (0 - mean) / std.
  torch::Tensor normalized_black() const;
  // Per channel, [0, 1] pixel scale: what get_batch normalises with,
  // (pixel / 255 - mean[c]) / std_dev[c]. The manifest's own statistics unless
  // use_normalisation() replaced them.
  const std::vector<double>& mean() const;
  const std::vector<double>& std_dev() const;
  // Normalises with other statistics: a network's training-time
  // preprocessing (model::Preprocessing), so that a test set is seen as the
  // network was trained. Throws ctmq::Error naming `source` (e.g. "network
  // file PATH") when the channel count differs.
  void use_normalisation(const std::vector<double>& mean, const std::vector<double>& std_dev,
                         const std::string& source);

  // Loads the records at `indices` (any order, repeats allowed) as one batch.
  Batch get_batch(const std::vector<int64_t>& indices) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace ctmq::data
