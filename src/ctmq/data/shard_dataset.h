// Read side of the shard format (docs/shard-format.md): random access to the
// records of a data set described by a manifest, of either record type:
// fixed-size raw records (version 1) or encoded JPEG/PNG records (version 2),
// which are decoded and transformed to the manifest's C x H x W as they are
// read (the evaluation transform, or random-resized-crop when training).
//
// Records are read on demand (never the whole set at once) and their
// checksums verified; a bad shard gives a ctmq::Error naming the file and the
// record. Thread safety: const methods may be called concurrently.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "ctmq/data/augment.h"
#include "ctmq/data/shard_format.h"

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

  RecordKind record() const;

  // Loads the records at `indices` (any order, repeats allowed) as one batch.
  // Encoded records get the evaluation transform (image_transform.h).
  // Throws ctmq::Error naming the shard file, the record in it and its data
  // set index for a record that fails its checksum, cannot be read, or (encoded)
  // does not decode.
  Batch get_batch(const std::vector<int64_t>& indices) const;

  // The training batch of `indices` in `epoch`, augmented by `augment` as the
  // record type allows: none (= get_batch), crop-flip (fixed records:
  // augment_batch on get_batch's images), random-resized-crop (encoded
  // records: the crop is taken from each stored image as it is decoded, then
  // resized to H x W and flipped). Refuses crop-flip on encoded records and
  // random-resized-crop on fixed ones (ctmq::Error naming --augment).
  Batch get_training_batch(const std::vector<int64_t>& indices, int64_t epoch,
                           const AugmentOptions& augment) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace ctmq::data
