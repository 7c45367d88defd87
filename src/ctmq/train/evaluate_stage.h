// evaluate_stage: the evaluation of one stage of the chain, on every rank of
// `comm`: ctmq-eval's library call, beside train_stage (trainer.h). Both live
// here because both write the stage's directory and its TensorBoard curves.
//
// Contract (docs/training.md, docs/run-directory.md):
//  - The stage must be DONE (RUN/stages/STAGE/DONE); its final.pt is loaded at
//    its own bit depths, or at options.bits_override's (a what-if evaluation).
//  - With bn_recalibrate_batches > 0 the BatchNorm statistics are re-estimated
//    first on that many global training batches (eval::recalibrate_batch_norm).
//  - Test images are normalised as the network was trained
//    (eval::normalise_as_trained).
//  - Rank 0 writes, in this order: eval-network.pt (only when BatchNorm was
//    re-estimated at the stage's own depths; removed otherwise), then
//    eval.json (atomically), then the eval/* point of the stage's TensorBoard
//    curves when RUN/tensorboard/STAGE exists. A what-if evaluation writes
//    only eval-wKaK.json, never eval.json. quant_report.json first, when asked.
//  - On SIGUSR1/SIGTERM (agreed by every rank before BatchNorm re-estimation,
//    before the evaluation and before writing) nothing is written and the
//    outcome is kPreempted: rerun to evaluate.
// Bad input (stage not DONE, a missing manifest, invalid bit depths, another
// class count) throws ctmq::Error before anything is written.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ctmq/dist/communicator.h"
#include "ctmq/dist/device.h"
#include "ctmq/eval/eval_json.h"
#include "ctmq/quant/bit_depths.h"

namespace ctmq::train {

struct EvalStageOptions {
  std::string run_dir;         // REQUIRED
  std::string stage;           // REQUIRED: a DONE stage
  std::string test_manifest;   // REQUIRED: [data] test-manifest
  std::string train_manifest;  // [data] train-manifest: needed by bn_recalibrate_batches only
  int64_t test_limit = 0;      // evaluate the first N test samples; 0 = all
  int64_t train_limit = 0;     // re-estimate BatchNorm on the first N training samples; 0 = all
  // Global batch (the sum over ranks, as [train] batch): each rank takes
  // ceil(batch / ranks) test images per forward pass; BatchNorm re-estimation
  // draws global batches of this size. Results do not depend on it.
  int64_t batch = 256;
  int64_t bn_recalibrate_batches = 0;  // 0 = off
  bool quant_report = false;           // also write quant_report.json (own depths only)
  // Evaluate the stage's weights at other depths (no training); an unset
  // field (0) keeps the stage's own depth. Valid: 1..8, 32.
  int weight_bits_override = 0;
  int activation_bits_override = 0;
  int threads = 0;  // per rank; 0 = dist::resolve_threads's default
  dist::DeviceKind device = dist::DeviceKind::kCpu;
};

enum class EvalStageOutcome { kWritten, kPreempted };

struct EvalStageResult {
  EvalStageOutcome outcome = EvalStageOutcome::kWritten;
  eval::EvalRecord record;    // filled when kWritten (on every rank)
  std::string eval_path;      // the eval.json (or eval-wKaK.json) written
  quant::BitDepths own_bits;  // the stage's own depths (record.bits may differ)
};

EvalStageResult evaluate_stage(const EvalStageOptions& options, dist::Communicator& comm);

}  // namespace ctmq::train
