// The stage plan: cycles x quantization steps as one ordered list of stages,
// each with its bit depths, epochs and init source. ctmq-plan prints it; the
// local runner and the Slurm submit script both read it, so the schedule
// logic lives here only (docs/pipeline.md describes the shapes).
#pragma once

#include <string>
#include <vector>

#include "ctmq/common/enum_names.h"
#include "ctmq/plan/plan_options.h"
#include "ctmq/quant/bit_depths.h"

namespace ctmq::plan {

enum class StageRole {
  kPretrain,  // c0-fp
  kAccurate,  // the accurate model that opens cycles 2..C
  kStep,      // a quantization step that is not a cycle's last
  kResult,    // a cycle's final k_target model: that cycle's result
  kBaseline,  // base-direct-*, base-step-*
};
inline constexpr EnumTable<StageRole, 5> kStageRoleNames{{
    {StageRole::kPretrain, "pretrain"},
    {StageRole::kAccurate, "accurate"},
    {StageRole::kStep, "step"},
    {StageRole::kResult, "result"},
    {StageRole::kBaseline, "baseline"},
}};

std::string role_name(StageRole role);
StageRole parse_role(const std::string& name);  // throws ctmq::Error

struct Stage {
  int index = 0;     // position in the chain, 0-based
  std::string name;  // c0-fp, c1-w4a4, ..., c2-fp, base-direct-w1a1
  int cycle = 0;     // 0 for c0-fp and the baselines, else 1..C
  int step = 0;      // 0 = pretrain/accurate/baseline, 1.. = step inside the cycle
  quant::BitDepths bits;
  int epochs = 0;
  // ctmq-train --init value: "none", an earlier stage's name, or the
  // pretrained source ("torchvision:PATH" / "weights:PATH").
  std::string init;
  StageRole role = StageRole::kStep;
};

struct StagePlan {
  std::vector<Stage> stages;

  // nullptr when no stage has that name.
  const Stage* find(const std::string& name) const;
  // Comma-separated stage names, for error messages.
  std::string names() const;
  bool operator==(const StagePlan& other) const;
};

bool operator==(const Stage& a, const Stage& b);

// Builds the plan of `options` (validated first; throws ctmq::Error).
//
// c0-fp first (init = options.pretrained). Cycle 1 runs the staircase
// k_start, k_start-step, ... down to k_target (the target is always the last
// step). Each later cycle opens with the accurate model (init = the previous
// cycle's result), then reading A continues with the staircase steps strictly
// below the accurate depth, reading B with k_target only. The last cycle's
// result step takes epochs_result (when set). Baselines last: direct, one-step,
// then the restart control (PlanOptions).
StagePlan make_plan(const PlanOptions& options);

// The accurate model that supervises `stage` when a run distils (ctmq-train
// --distill accurate): for a quantized stage of cycle c, that cycle's accurate
// stage (c0-fp for cycle 1); for a baseline, c0-fp; none ("") for c0-fp and
// the accurate stages themselves. Throws ctmq::Error for an unknown stage.
std::string accurate_teacher(const StagePlan& plan, const std::string& stage);

}  // namespace ctmq::plan
