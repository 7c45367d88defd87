#include "ctmq/train/train_options.h"

#include <algorithm>
#include <cstdlib>

#include "ctmq/common/error.h"

namespace ctmq::train {

OptimizerKind parse_optimizer_kind(const std::string& name) {
  return parse_enum(kOptimizerKindNames, name, "--optimizer");
}
std::string optimizer_kind_name(OptimizerKind kind) { return enum_name(kOptimizerKindNames, kind); }

BatchNormSync parse_batch_norm_sync(const std::string& name) {
  return parse_enum(kBatchNormSyncNames, name, "--sync-batch-norm");
}

BatchNormSync resolve_batch_norm_sync(BatchNormSync sync, DeviceKind device) {
  if (sync != BatchNormSync::kAuto) return sync;
  return device == DeviceKind::kCuda ? BatchNormSync::kPerRank : BatchNormSync::kMultiRank;
}

HyperParameters resolve_hyper_parameters(const TrainOptions& options, int64_t steps_per_epoch) {
  HyperParameters h;
  h.optimizer = options.optimizer;
  if (h.optimizer == OptimizerKind::kAuto) {
    h.optimizer = options.bits.weight == 1 ? OptimizerKind::kAdam : OptimizerKind::kSgd;
  }
  const bool fine_tuning = options.init != "none";
  const double batch_scale = static_cast<double>(options.batch) / kReferenceBatch;
  if (options.lr > 0) {
    h.lr = options.lr;
  } else if (h.optimizer == OptimizerKind::kAdam) {
    h.lr = 1e-3 * batch_scale;
  } else {
    h.lr = (fine_tuning ? 0.01 : 0.1) * batch_scale;
  }
  if (options.weight_decay >= 0) {
    h.weight_decay = options.weight_decay;
  } else if (h.optimizer == OptimizerKind::kAdam) {
    h.weight_decay = 0;  // ReActNet: no weight decay on binary weights
  } else {
    h.weight_decay = options.bits.weight == 2 ? 5e-5 : 1e-4;
  }
  h.momentum = options.momentum;
  h.total_steps = options.epochs * steps_per_epoch;
  double warmup_epochs = options.warmup_epochs;
  if (warmup_epochs < 0) {
    warmup_epochs = options.batch > kReferenceBatch ? std::min(1.0, options.epochs / 10.0) : 0.0;
  }
  h.warmup_steps =
      std::min<int64_t>(h.total_steps, static_cast<int64_t>(warmup_epochs * steps_per_epoch + 0.5));
  return h;
}

DataOrder parse_data_order(const std::string& name) {
  return parse_enum(kDataOrderNames, name, "data order");
}

uint64_t stage_data_seed(uint64_t seed, const std::string& stage, DataOrder order) {
  if (order == DataOrder::kShared) return seed;
  uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a, 64 bit
  for (unsigned char c : stage) hash = (hash ^ c) * 0x100000001b3ULL;
  return seed ^ hash;
}

void validate(const TrainOptions& o) {
  CTMQ_CHECK(!o.run_dir.empty(), "--run-dir is required");
  CTMQ_CHECK(!o.stage.empty(), "--stage is required (e.g. c1-w4a4)");
  CTMQ_CHECK(o.stage.find('/') == std::string::npos && o.stage != "." && o.stage != "..",
             "--stage '" << o.stage << "' must be a plain name without '/'");
  CTMQ_CHECK(!o.train_manifest.empty(),
             "[data] train-manifest is required: the manifest.json written by ctmq-shard");
  CTMQ_CHECK(o.epochs >= 1, "--epochs " << o.epochs << " must be at least 1");
  CTMQ_CHECK(o.batch >= 1, "--batch " << o.batch << " must be at least 1");
  CTMQ_CHECK(o.train_limit >= 0, "--train-limit " << o.train_limit << " must be >= 0 (0 = all)");
  CTMQ_CHECK(o.lr >= 0, "--lr " << o.lr << " must be >= 0 (0 = method default)");
  CTMQ_CHECK(o.momentum >= 0 && o.momentum < 1,
             "--momentum " << o.momentum << " must be in [0, 1)");
  CTMQ_CHECK(o.checkpoint_every >= 0, "--checkpoint-every must be >= 0 (0 = only at the end)");
  CTMQ_CHECK(o.log_every >= 1, "--log-every must be at least 1");
  CTMQ_CHECK(o.eval_every >= 0,
             "[train] eval-every = " << o.eval_every << " must be >= 0 (epochs; 0 = off)");
  CTMQ_CHECK(o.eval_every == 0 || !o.test_manifest.empty(),
             "[train] eval-every = " << o.eval_every
                                     << " needs [data] test-manifest (the test shards' "
                                        "manifest.json, as for ctmq-eval); set it, or "
                                        "eval-every = 0");
  CTMQ_CHECK(o.test_limit >= 0, "--test-limit " << o.test_limit << " must be >= 0 (0 = all)");
  CTMQ_CHECK(o.keep_checkpoints >= 2, "keep_checkpoints must be at least 2");
  CTMQ_CHECK(o.threads >= 0, "--threads must be >= 0 (0 = automatic)");
  CTMQ_CHECK(o.collective_timeout_s >= 0, "--collective-timeout "
                                              << o.collective_timeout_s
                                              << " must be >= 0 (seconds; 0 = wait for ever)");
  CTMQ_CHECK(o.allreduce_bucket_mb > 0 && o.allreduce_bucket_mb <= 1024,
             "--allreduce-bucket-mb " << o.allreduce_bucket_mb
                                      << " must be in (0, 1024] (MiB of gradients per allreduce)");
  CTMQ_CHECK(o.loader_workers >= -1, "--loader-workers " << o.loader_workers
                                                         << " must be >= -1 (-1 = automatic, "
                                                            "0 = on the training thread)");
  CTMQ_CHECK(o.augment_pad >= 0, "--augment-pad " << o.augment_pad << " must be >= 0");
  CTMQ_CHECK(o.distill_weight >= 0 && o.distill_weight <= 1,
             "--distill-weight " << o.distill_weight << " must be in [0, 1]");
  CTMQ_CHECK(o.distill_from != o.stage,
             "--distill-from " << o.distill_from << ": a stage cannot teach itself");
}

}  // namespace ctmq::train
