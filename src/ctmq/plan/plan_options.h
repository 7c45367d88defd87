// Options of the stage plan: which cycles and quantization steps a chain runs
// (method.md, "The schedule"). Every field is read from the [plan] section of
// run.ini by ctmq-plan; the defaults below are method.md's.
#pragma once

#include <string>

#include "ctmq/common/enum_names.h"

namespace ctmq::plan {

// Reading A repeats the whole staircase in every cycle; reading B runs one
// staircase, then alternates accurate <-> k_target for the remaining cycles.
enum class Schedule { kA, kB };
inline constexpr EnumTable<Schedule, 4> kScheduleNames{{
    {Schedule::kA, "a"},
    {Schedule::kB, "b"},
    {Schedule::kA, "A"},  // aliases
    {Schedule::kB, "B"},
}};

// The model that cycles 2..C start with (trained from the previous cycle's
// low-bit result). The staircase of such a cycle resumes below its depth.
enum class AccurateModel {
  kFullPrecision,  // W32A32 (default)
  kKStart,         // the first step's depth, k_start
  kKPlusOne,       // one bit above the target, k_target + 1
};
inline constexpr EnumTable<AccurateModel, 3> kAccurateModelNames{{
    {AccurateModel::kFullPrecision, "fp"},
    {AccurateModel::kKStart, "k-start"},
    {AccurateModel::kKPlusOne, "k-plus-one"},
}};

struct PlanOptions {
  Schedule schedule = Schedule::kA;
  int k_start = 4;   // first quantization step's weight bits (1..8)
  int k_target = 1;  // last step's weight bits (1..k_start)
  int step = 1;      // bits removed per step (>= 1); the staircase always ends at k_target
  int cycles = 3;    // C >= 1
  AccurateModel accurate = AccurateModel::kFullPrecision;
  // Activation bits of every quantized stage; 0 = same as the weights (W_kA_k).
  int a_bits = 0;
  int epochs_pretrain = 10;  // c0-fp (>= 1; fine-tuning epochs when `pretrained` is set)
  int epochs_accurate = 2;   // accurate stages of cycles 2..C
  int epochs_step = 2;       // every quantization step
  // The result step of the last cycle (the chain's final model); 0 = epochs_step.
  int epochs_result = 0;
  // Initialisation of c0-fp: "none" (train from scratch), "torchvision:PATH"
  // or "weights:PATH" (passed to ctmq-train --init as written).
  std::string pretrained = "none";
  // Adds base-direct-<target> (from c0-fp, same epochs as every CTMQ stage
  // after c0) and base-step-<target> (from c0-fp, one step's epochs).
  bool baselines = true;
  // Adds the restart control base-restart-<target>-1..N: the target depth only,
  // as N stages with the epochs of the N CTMQ stages after c0 in chain order,
  // each from the previous (the first from c0-fp). Same bit depth throughout,
  // same optimizer and schedule restarts as CTMQ: it separates the effect of
  // the bit changes from that of the restarts (method.md, "A fair comparison").
  bool restart_control = false;
};

// Parsers for the option values; throw ctmq::Error naming the option and the
// accepted values.
Schedule parse_schedule(const std::string& value);             // "a" | "b"
AccurateModel parse_accurate_model(const std::string& value);  // "fp" | "k-start" | "k-plus-one"
int parse_activation_bits(const std::string& value);           // "same" -> 0 | "1".."8" | "32"
std::string schedule_name(Schedule schedule);
std::string accurate_model_name(AccurateModel accurate);

// Throws ctmq::Error naming the first invalid option and what to do.
void validate(const PlanOptions& options);

}  // namespace ctmq::plan
