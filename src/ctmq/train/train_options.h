// TrainOptions: everything one stage of training needs, with method.md's
// defaults. Filled by ctmq-train from its flags (--config RUN.ini [model],
// [train], [data]); the 0 / -1 sentinels mean "the method's default", resolved
// by resolve_hyper_parameters() once the stage's bits and init are known.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "ctmq/common/enum_names.h"
#include "ctmq/data/augment.h"
#include "ctmq/dist/collectives.h"
#include "ctmq/dist/device.h"
#include "ctmq/model/network.h"
#include "ctmq/model/torchvision_import.h"
#include "ctmq/quant/bit_depths.h"

namespace ctmq::train {

enum class OptimizerKind {
  kAuto,  // method.md: Adam at 1-bit weights, SGD otherwise
  kSgd,   // SGD with momentum, cosine decay
  kAdam,  // Adam, linear decay to 0
};
inline constexpr EnumTable<OptimizerKind, 3> kOptimizerKindNames{{
    {OptimizerKind::kAuto, "auto"},
    {OptimizerKind::kSgd, "sgd"},
    {OptimizerKind::kAdam, "adam"},
}};
// "auto" | "sgd" | "adam"; throws ctmq::Error otherwise.
OptimizerKind parse_optimizer_kind(const std::string& name);
std::string optimizer_kind_name(OptimizerKind kind);

// [train] device: dist/device.h is the one home of the device choice.
using dist::DeviceKind;
using dist::parse_device_kind;

// Global batch at which method.md's learning rates hold; other batches scale
// the default learning rate linearly (Goyal et al.).
constexpr int64_t kReferenceBatch = 256;

enum class BatchNormSync { kAuto, kMultiRank, kAlways, kPerRank };
inline constexpr EnumTable<BatchNormSync, 4> kBatchNormSyncNames{{
    {BatchNormSync::kAuto, "auto"},
    {BatchNormSync::kMultiRank, "multi-rank"},
    {BatchNormSync::kAlways, "always"},
    {BatchNormSync::kPerRank, "per-rank"},
}};
// "auto" | "multi-rank" | "always" | "per-rank"; throws ctmq::Error naming
// the accepted values.
BatchNormSync parse_batch_norm_sync(const std::string& name);
// kAuto resolved for `device`: kPerRank on CUDA (as DDP: no BatchNorm
// communication holding up the gradient reductions), kMultiRank on CPU;
// any other value is returned unchanged.
BatchNormSync resolve_batch_norm_sync(BatchNormSync sync, DeviceKind device);

// Which permutation of the training set a stage visits.
enum class DataOrder {
  kPerStage,  // seeded by (seed, stage name): every stage of a run draws its own order
  kShared,    // seeded by seed alone: every stage visits the same permutations
};
inline constexpr EnumTable<DataOrder, 2> kDataOrderNames{{
    {DataOrder::kPerStage, "per-stage"},
    {DataOrder::kShared, "shared"},
}};
// "per-stage" | "shared"; throws ctmq::Error naming the accepted values.
DataOrder parse_data_order(const std::string& name);

// The data seed of a stage: `seed` for kShared, else seed mixed with the
// FNV-1a hash of the stage name (stable across machines and compilers).
uint64_t stage_data_seed(uint64_t seed, const std::string& stage, DataOrder order);

struct TrainOptions {
  // --- where ---
  std::string run_dir;         // REQUIRED: the run directory
  std::string stage;           // REQUIRED: stage name, e.g. "c1-w4a4"
  std::string init = "none";   // none | STAGE | torchvision:PATH | weights:PATH
  std::string train_manifest;  // REQUIRED: manifest.json written by ctmq-shard
  int64_t train_limit = 0;     // use the first N samples; 0 = all
  // [data] test-manifest / test-limit: the test set of [train] eval-every
  // (ctmq-eval's keys); "" = none.
  std::string test_manifest;
  int64_t test_limit = 0;  // evaluate the first N test samples; 0 = all

  // --- model ---
  model::ModelOptions model;  // num_classes/in_channels are taken from the data set
  quant::BitDepths bits;      // the stage's bit depths (32 = full precision)
  // With init torchvision:PATH: kUse copies the file's classifier (its class
  // count must be the data set's); kReinit initialises fc afresh to fine-tune
  // onto another class count. Ignored by every other init.
  model::PretrainedClassifier pretrained_classifier = model::PretrainedClassifier::kUse;

  // --- schedule ---
  int64_t epochs = 1;
  int64_t batch = 256;  // global batch: the sum over ranks; divisible by the ranks
  OptimizerKind optimizer = OptimizerKind::kAuto;
  double lr = 0;             // 0 = method default (see resolve_hyper_parameters)
  double weight_decay = -1;  // -1 = method default
  double momentum = 0.9;     // SGD only
  // Linear warm-up in epochs (may be fractional); -1 = auto: 1 epoch (at most
  // a tenth of the stage) when the global batch exceeds kReferenceBatch, else
  // none. It depends on the global batch, never on the rank count, so the
  // same global batch trains the same way on any number of ranks.
  double warmup_epochs = -1;
  uint64_t seed = 0;  // model init and data order
  DataOrder data_order = DataOrder::kPerStage;
  // Pad-and-random-crop + flip (data/augment.h), seeded by the stage's data seed.
  data::Augment augment = data::Augment::kNone;
  int64_t augment_pad = 2;

  // --- supervision by the accurate model (an extension beyond the paper's
  // abstract; ReActNet's distributional loss) ---
  // "none" or a DONE stage of this run whose final weights are the teacher.
  std::string distill_from = "none";
  // loss = (1 - w) * cross_entropy(labels) + w * cross_entropy(teacher's softmax);
  // in [0, 1]. Only used with distill_from.
  double distill_weight = 1.0;

  // --- execution ---
  int threads = 0;  // per rank; 0 = SLURM_CPUS_PER_TASK, else cores / ranks
  // Threads that read, check, decode and augment the next batches while the
  // step runs (data::BatchLoader); 0 = on the training thread (serial); -1 =
  // auto, dist::default_loader_workers. Batches are the same for any value.
  int loader_workers = -1;
  DeviceKind device = DeviceKind::kCpu;
  int64_t checkpoint_every = 100;  // steps; 0 = only at the end (and on preemption)
  int keep_checkpoints = 2;        // newest checkpoints kept (>= 2: one stays valid while writing)
  int64_t log_every = 10;          // steps between progress lines / metrics records
  // Test-set evaluation after every N-th epoch but the last (train/
  // stage_evaluation.h); needs test_manifest. 0 = off. Training is unchanged.
  int64_t eval_every = 0;
  // TensorBoard event files in RUN/tensorboard/STAGE (train/tensorboard_log.h),
  // beside metrics.jsonl; false = none.
  bool tensorboard = true;
  // BatchNorm statistics: kAuto is kPerRank on CUDA and kMultiRank on CPU
  // (resolve_batch_norm_sync). kMultiRank synchronises them only when there is more
  // than one rank (one rank runs torch's native, faster BatchNorm); kAlways
  // takes the synchronised path on one rank too, so 1 and R ranks run the same
  // arithmetic (the 1-vs-2-rank equivalence tests use it). The two paths differ
  // by float rounding only. kPerRank never synchronises: each rank normalises
  // with its own share of the batch (DDP's default, no BatchNorm communication);
  // the running statistics are averaged over ranks before every in-stage
  // evaluation and checkpoint (dist::average_buffers).
  BatchNormSync batch_norm_sync = BatchNormSync::kAuto;
  // Layout of the activations (model::NetworkImpl::set_memory_format):
  // channels-last (NHWC) or contiguous (NCHW). Same function and checkpoints.
  torch::MemoryFormat memory_format = torch::MemoryFormat::ChannelsLast;
  // Gradient averaging over ranks (dist/gradient_allreducer.h): buckets of
  // about allreduce_bucket_mb MiB, each reduced as soon as backward has
  // produced its gradients (overlap_allreduce, as DDP) or all after backward.
  // The sums are the same either way; only the schedule differs.
  bool overlap_allreduce = true;
  double allreduce_bucket_mb = 4;
  // The engine of GPU ranks' collectives (dist/collectives.h): ctmq-train
  // builds the communicator it passes to train_stage from it.
  dist::Collectives collectives = dist::Collectives::kAuto;
  // A rank whose collective has not completed after this many seconds ends
  // (dist/collective_watchdog.h; ctmq-train installs it); 0 = never. Long
  // enough for the slowest rank's work between two collectives (loading data,
  // rank 0 writing a checkpoint).
  double collective_timeout_s = 1800;
  std::string resolved_config;  // INI text: written to the stage's config.ini and checkpoints

  // Test hook: called on every rank after each completed optimizer step with
  // the global step count (tests use it to inject signals and crashes).
  std::function<void(int64_t global_step)> after_step;
  // Test hook: called on every rank right after after_step with this rank's
  // replica (tests compare replicas across ranks; collectives are allowed).
  std::function<void(int64_t global_step, torch::nn::Module& replica)> after_step_replica;
};

// The hyper-parameters actually used, after defaults are resolved.
struct HyperParameters {
  OptimizerKind optimizer = OptimizerKind::kSgd;  // never kAuto
  double lr = 0;
  double weight_decay = 0;
  double momentum = 0.9;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;
};

// method.md's defaults: SGD (momentum 0.9, cosine) for k >= 2 and full
// precision, lr 0.1 from scratch (init none) or 0.01 when fine-tuning, weight
// decay 1e-4 (5e-5 at 2-bit weights); Adam (lr 1e-3, linear decay, no weight
// decay) for 1-bit weights. The default lr is scaled by batch/256; an explicit
// lr is used as given.
HyperParameters resolve_hyper_parameters(const TrainOptions& options, int64_t steps_per_epoch);

// Throws ctmq::Error naming the option when an option is out of range.
void validate(const TrainOptions& options);

}  // namespace ctmq::train
