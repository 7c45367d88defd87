// The state of every stage of a run directory, read from its files only
// (ctmq-status; docs/pipeline.md, "Watching a run"). slurm_jobs.h adds what
// Slurm knows on top.
//
// From the files of RUN/stages/STAGE (docs/run-directory.md):
//   DONE verifies              -> kDone (evaluated when eval.json exists)
//   LOCK held by a live process on this host, or on another host (a Slurm
//   node: its job's state decides, slurm_jobs.h)
//                              -> kRunning
//   checkpoints/step-N.pt, no live lock
//                              -> kPartial: preempted, failed or stopped at
//                                 step N; the next run resumes there
//   nothing, init ready        -> kNotStarted
//   nothing, init stage not DONE
//                              -> kWaiting (detail: the init stage)
//   DONE note fails to verify  -> kDamaged (detail: the error)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ctmq/common/run_layout.h"
#include "ctmq/plan/stage_plan.h"

namespace ctmq::status {

enum class StageState {
  kDone,
  kRunning,
  kPartial,
  kNotStarted,
  kWaiting,
  kPending,  // Slurm: the training job waits in the queue (detail: the reason)
  kStopped,  // Slurm: the training job ended without DONE (detail: how)
  kDamaged,
};

struct StageStatus {
  const plan::Stage* stage = nullptr;  // into the plan given to read_run_status
  StageState state = StageState::kNotStarted;
  std::string detail;            // the init waited for, the Slurm reason, an eval job's state...
  bool evaluated = false;        // eval.json exists
  std::optional<double> top1;    // percent, from eval.json
  int64_t step = -1;             // optimizer steps done (-1: none known)
  int64_t total_steps = -1;      // the stage's steps (-1: not known yet)
  int64_t checkpoint_step = -1;  // the newest checkpoint's step: where a rerun resumes
  double images_per_s = -1;      // the newest metrics.jsonl training record's (-1: none)
  double eta_s = -1;  // seconds to the last step at the newest process's rate (-1: unknown, DONE)
  std::string lock_holder;          // StageLockHolder::description of a held lock
  std::string lock_job;             // the Slurm job id the lock names
  std::string train_job, eval_job;  // Slurm job ids (slurm_jobs.h), "" when none
};

// One status per stage of `plan`, in plan order. Never throws for the state
// of a stage (a damaged file becomes kDamaged or an unknown figure).
std::vector<StageStatus> read_run_status(const RunLayout& run, const plan::StagePlan& plan);

// "DONE", "evaluated", "running", "partial", "not started", "waiting for X",
// "pending (REASON)", the Slurm ending ("failed (exit 1)", "preempted"...),
// "damaged DONE"; followed by ", " and the detail where there is one.
std::string state_text(const StageStatus& status);

// The state's one-word name for machine-readable output: done, evaluated,
// running, partial, not-started, waiting, pending, stopped, damaged.
std::string state_name(const StageStatus& status);

}  // namespace ctmq::status
