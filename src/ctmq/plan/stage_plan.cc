#include "ctmq/plan/stage_plan.h"

#include <set>

#include "ctmq/common/error.h"

namespace ctmq::plan {
namespace {

using quant::BitDepths;
using quant::kFullPrecisionBits;

BitDepths quantized(int weight_bits, const PlanOptions& o) {
  return BitDepths{weight_bits, o.a_bits == 0 ? weight_bits : o.a_bits};
}

// k_start, k_start - step, ... while above k_target, then k_target.
std::vector<int> staircase(const PlanOptions& o) {
  std::vector<int> bits;
  for (int k = o.k_start; k > o.k_target; k -= o.step) bits.push_back(k);
  bits.push_back(o.k_target);
  return bits;
}

BitDepths accurate_bits(const PlanOptions& o) {
  switch (o.accurate) {
    case AccurateModel::kFullPrecision:
      return BitDepths{kFullPrecisionBits, kFullPrecisionBits};
    case AccurateModel::kKStart:
      return quantized(o.k_start, o);
    case AccurateModel::kKPlusOne:
      return quantized(o.k_target + 1, o);
  }
  CTMQ_ASSERT(false);
}

class PlanBuilder {
 public:
  void add(std::string name, int cycle, int step, BitDepths bits, int epochs, std::string init,
           StageRole role) {
    Stage s;
    s.index = static_cast<int>(plan_.stages.size());
    s.name = std::move(name);
    s.cycle = cycle;
    s.step = step;
    s.bits = bits;
    s.epochs = epochs;
    s.init = std::move(init);
    s.role = role;
    CTMQ_ASSERT(names_.insert(s.name).second);
    plan_.stages.push_back(std::move(s));
  }
  const std::string& last() const { return plan_.stages.back().name; }
  StagePlan take() { return std::move(plan_); }

 private:
  StagePlan plan_;
  std::set<std::string> names_;
};

std::string cycle_stage_name(int cycle, BitDepths bits) {
  return "c" + std::to_string(cycle) + "-" + bits.tag();
}

}  // namespace

std::string role_name(StageRole role) { return enum_name(kStageRoleNames, role); }
StageRole parse_role(const std::string& name) {
  return parse_enum(kStageRoleNames, name, "stage role");
}

const Stage* StagePlan::find(const std::string& name) const {
  for (const Stage& s : stages)
    if (s.name == name) return &s;
  return nullptr;
}

std::string StagePlan::names() const {
  std::string out;
  for (const Stage& s : stages) out += (out.empty() ? "" : ", ") + s.name;
  return out;
}

bool operator==(const Stage& a, const Stage& b) {
  return a.index == b.index && a.name == b.name && a.cycle == b.cycle && a.step == b.step &&
         a.bits == b.bits && a.epochs == b.epochs && a.init == b.init && a.role == b.role;
}

bool StagePlan::operator==(const StagePlan& other) const { return stages == other.stages; }

StagePlan make_plan(const PlanOptions& o) {
  validate(o);
  PlanBuilder b;
  const BitDepths fp{kFullPrecisionBits, kFullPrecisionBits};
  b.add("c0-fp", 0, 0, fp, o.epochs_pretrain, o.pretrained, StageRole::kPretrain);

  const std::vector<int> steps = staircase(o);
  int ctmq_epochs = 0;                 // every CTMQ stage after c0, for the direct baseline
  std::vector<int> ctmq_stage_epochs;  // in chain order, for the restart control
  for (int cycle = 1; cycle <= o.cycles; ++cycle) {
    std::vector<int> bits = steps;
    if (cycle > 1) {
      const BitDepths acc = accurate_bits(o);
      b.add(cycle_stage_name(cycle, acc), cycle, 0, acc, o.epochs_accurate, b.last(),
            StageRole::kAccurate);
      ctmq_epochs += o.epochs_accurate;
      ctmq_stage_epochs.push_back(o.epochs_accurate);
      bits.clear();
      if (o.schedule == Schedule::kA) {
        for (int k : steps)
          if (k < acc.weight) bits.push_back(k);
      } else {
        bits.push_back(o.k_target);
      }
    }
    for (size_t i = 0; i < bits.size(); ++i) {
      const bool last = i + 1 == bits.size();
      const BitDepths depth = quantized(bits[i], o);
      const bool final_result = last && cycle == o.cycles;
      const int epochs = final_result && o.epochs_result > 0 ? o.epochs_result : o.epochs_step;
      b.add(cycle_stage_name(cycle, depth), cycle, static_cast<int>(i) + 1, depth, epochs, b.last(),
            last ? StageRole::kResult : StageRole::kStep);
      ctmq_epochs += epochs;
      ctmq_stage_epochs.push_back(epochs);
    }
  }
  if (o.baselines) {
    const BitDepths target = quantized(o.k_target, o);
    b.add("base-direct-" + target.tag(), 0, 0, target, ctmq_epochs, "c0-fp", StageRole::kBaseline);
    // With one step and one cycle the direct baseline already is the
    // one-step baseline.
    if (ctmq_epochs != o.epochs_step)
      b.add("base-step-" + target.tag(), 0, 0, target, o.epochs_step, "c0-fp",
            StageRole::kBaseline);
  }
  if (o.restart_control) {
    const BitDepths target = quantized(o.k_target, o);
    std::string init = "c0-fp";
    for (size_t i = 0; i < ctmq_stage_epochs.size(); ++i) {
      const std::string name = "base-restart-" + target.tag() + "-" + std::to_string(i + 1);
      b.add(name, 0, static_cast<int>(i) + 1, target, ctmq_stage_epochs[i], init,
            StageRole::kBaseline);
      init = name;
    }
  }
  return b.take();
}

std::string accurate_teacher(const StagePlan& plan, const std::string& stage) {
  const Stage* s = plan.find(stage);
  CTMQ_CHECK(s != nullptr, "stage " << stage << " is not in the plan; stages: " << plan.names());
  if (s->role == StageRole::kPretrain || s->role == StageRole::kAccurate) return "";
  if (s->role == StageRole::kBaseline || s->cycle <= 1) return "c0-fp";
  for (const Stage& other : plan.stages)
    if (other.cycle == s->cycle && other.role == StageRole::kAccurate) return other.name;
  return "c0-fp";
}

}  // namespace ctmq::plan
