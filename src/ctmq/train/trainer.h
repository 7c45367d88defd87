// train_stage: one stage of the chain, on every rank of `comm`.
//
// Contract (docs/training.md):
//  - A stage whose DONE marker exists is left alone (kAlreadyDone).
//  - Otherwise it continues from the newest valid checkpoint of
//    RUN/stages/STAGE/checkpoints, or starts from options.init.
//  - Ranks hold identical replicas: parameters and buffers are broadcast from
//    rank 0 after initialisation; gradients are averaged in buckets; BatchNorm
//    statistics are synchronised (model::set_stats_reducer) when size > 1
//    unless sync-batch-norm is per-rank (the default on CUDA), whose running
//    statistics are averaged before evaluations and checkpoints; LSQ's
//    data-dependent initialisation always uses the global batch. Every
//    checkpoint first compares each rank's replica with rank 0's (a CRC-32
//    over ranks) and throws on all ranks if one differs. With synchronised
//    BatchNorm two ranks train like one rank with the same global batch.
//  - A checkpoint is written every options.checkpoint_every steps, on
//    preemption and at the end; on SIGUSR1/SIGTERM every rank stops after the
//    current step (kPreempted, DONE not written).
//  - On completion rank 0 writes final.pt, then DONE (last, atomically).
//  - With the same rank count and thread count on CPU, an interrupted and
//    resumed stage ends with bit-identical weights to an uninterrupted one.
// Bad input (missing manifest, init stage not DONE, a checkpoint or init file
// of another architecture, more ranks than samples) throws ctmq::Error before
// anything in the run directory is written.
#pragma once

#include <cstdint>

#include "ctmq/dist/communicator.h"
#include "ctmq/train/train_options.h"

namespace ctmq::train {

enum class StageOutcome { kCompleted, kAlreadyDone, kPreempted };

struct StageResult {
  StageOutcome outcome = StageOutcome::kCompleted;
  int64_t global_step = 0;    // optimizer steps done in this stage
  int64_t resumed_from = -1;  // global step of the checkpoint resumed from, -1 if none
  double last_loss = 0;       // loss of the last logged interval (all ranks)
  double last_accuracy = 0;
};

StageResult train_stage(const TrainOptions& options, dist::Communicator& comm);

}  // namespace ctmq::train
