// Full-state checkpoints of a training stage (format: docs/training.md).
//
// A checkpoint holds the model's parameters and buffers, the optimizer state,
// the position in the stage (epoch, step in epoch, global step: the learning
// rate schedule is a function of the global step), the CPU RNG state, the
// stage name, bit depths, architecture, the resolved config and versions.
//
// On disk: RUN/stages/STAGE/checkpoints/step-NNNNNNNN.pt, each a LibTorch
// archive followed by a 24-byte footer (magic "CTMQCKP1", payload size,
// CRC-32 of the payload, format version). Files are written atomically (temp
// file, fsync, rename) and the newest `keep` are kept, so a valid one always
// remains while the next is written. Loading verifies the footer and falls
// back to the previous checkpoint, with a warning, when the newest is corrupt.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ctmq/model/network_description.h"
#include "ctmq/quant/bit_depths.h"

namespace ctmq::train {

constexpr int64_t kCheckpointFormatVersion = 1;

struct CheckpointMeta {
  std::string stage;
  quant::BitDepths bits;
  std::string architecture;  // model::architecture_name
  int64_t num_classes = 0;
  int64_t in_channels = 0;
  int64_t width = 0;
  int64_t epoch = 0;          // the epoch to continue in
  int64_t step_in_epoch = 0;  // the next step inside `epoch`
  int64_t global_step = 0;    // optimizer steps completed in this stage
  int64_t world_size = 1;     // ranks that wrote it (bit-exact resume needs the same)
  std::string config;         // resolved INI of the run that wrote it
  std::string ctmq_version;   // filled by save
  std::string torch_version;  // filled by save

  // architecture, num_classes, in_channels and width as the one description
  // network files share (model/network_description.h: compare it with
  // model::check_same_network). Throws ctmq::Error for an unknown architecture.
  model::NetworkDescription network() const;
  // Sets those four fields from `network` (e.g. model::describe_network(options)).
  void set_network(const model::NetworkDescription& network);
};

// A verified checkpoint, read into memory.
class Checkpoint {
 public:
  const CheckpointMeta& meta() const { return meta_; }
  const std::string& path() const { return path_; }
  // Copies the saved state into `model` and `optimizer` (and the CPU RNG).
  // REQUIRES: the model has the checkpoint's architecture (checked by the caller
  // through meta()); the optimizer is of the kind that wrote it.
  void restore(torch::nn::Module& model, torch::optim::Optimizer& optimizer) const;

 private:
  friend class CheckpointStore;
  CheckpointMeta meta_;
  std::string path_;
  std::shared_ptr<torch::serialize::InputArchive> archive_;
};

class CheckpointStore {
 public:
  // `directory` is created on the first save. REQUIRES: keep >= 2.
  explicit CheckpointStore(std::string directory, int keep = 2);

  // Writes step-<global_step>.pt atomically, then deletes all but the newest
  // `keep` checkpoints. Throws ctmq::Error on I/O failure (older files stay).
  std::string save(CheckpointMeta meta, torch::nn::Module& model,
                   torch::optim::Optimizer& optimizer) const;

  // The newest checkpoint that passes the integrity check; each corrupt newer
  // one is reported with a warning naming the file. nullopt when there is
  // none; throws ctmq::Error when there are checkpoints but every one is
  // damaged (starting over would discard their progress silently).
  // Tensors are placed on `device` (CPU by default).
  std::optional<Checkpoint> load_newest_valid(torch::Device device = torch::kCPU) const;

  // Reads and verifies one file; throws ctmq::Error naming it if it is corrupt.
  static Checkpoint load(const std::string& path, torch::Device device = torch::kCPU);
  // The same from the file's bytes, read elsewhere (rank 0 reads, the others
  // get the bytes from it); `path` names the file in errors.
  static Checkpoint from_bytes(const std::string& bytes, const std::string& path,
                               torch::Device device = torch::kCPU);

  // The file a checkpoint after `global_step` steps is written to.
  std::string path_for(int64_t global_step) const;

  // Checkpoint files, newest first.
  std::vector<std::string> list() const;

 private:
  std::string directory_;
  int keep_;
};

}  // namespace ctmq::train
