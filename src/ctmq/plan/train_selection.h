// Which stages of a run a runner trains: the one definition of "what is done,
// what runs next, what --from means", used by pipeline/run-chain.sh and
// slurm/submit.sh (through ctmq-status --stages-to-train) and by ctmq-status's
// table (docs/pipeline.md, "Resuming and --from").
//
// The rule:
//   * without --from, every stage that is not DONE is trained, in plan order;
//   * with --from STAGE, STAGE and every later stage are trained (retrained:
//     the runner first moves their directories aside), earlier stages never;
//   * a stage to be trained whose init is a stage that this selection does
//     not train needs that stage DONE with its final.pt; a pretrained source
//     (torchvision:PATH, weights:PATH) must exist. Otherwise the selection
//     is refused, naming the stage, its init and what to run instead.
#pragma once

#include <string>
#include <vector>

#include "ctmq/common/run_layout.h"
#include "ctmq/plan/stage_plan.h"

namespace ctmq::plan {

// The stages to train, in plan order; `from` is "" (no --from) or a stage
// name. Throws ctmq::Error when `from` names no stage of `plan`, when a DONE
// note is damaged (RunLayout::is_done), or when the rule above refuses.
std::vector<const Stage*> stages_to_train(const StagePlan& plan, const RunLayout& run,
                                          const std::string& from);

}  // namespace ctmq::plan
