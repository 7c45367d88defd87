#include "ctmq/plan/train_selection.h"

#include <filesystem>
#include <set>

#include "ctmq/common/error.h"

namespace ctmq::plan {

std::vector<const Stage*> stages_to_train(const StagePlan& plan, const RunLayout& run,
                                          const std::string& from) {
  const Stage* first = nullptr;
  if (!from.empty()) {
    first = plan.find(from);
    CTMQ_CHECK(first != nullptr,
               "--from " << from << ": no such stage in the plan; stages: " << plan.names());
  }
  std::vector<const Stage*> selected;
  std::set<std::string> trained;
  for (const Stage& s : plan.stages) {
    const bool train = first ? s.index >= first->index : !run.is_done(s.name);
    if (!train) continue;
    selected.push_back(&s);
    trained.insert(s.name);
  }
  for (const Stage* s : selected) {
    if (s->init == "none") continue;
    const size_t colon = s->init.find(':');
    if (colon != std::string::npos) {
      const std::string path = s->init.substr(colon + 1);
      CTMQ_CHECK(std::filesystem::exists(path),
                 "stage " << s->name << " starts from " << s->init << ", but " << path
                          << " does not exist; fix [plan] pretrained or provide the file");
      continue;
    }
    if (trained.count(s->init)) continue;
    const bool ready = run.is_done(s->init) && std::filesystem::exists(run.final_weights(s->init));
    CTMQ_CHECK(ready, "stage " << s->name << " starts from " << s->init << ", but "
                               << run.final_weights(s->init)
                               << " is missing (or the stage is not DONE) and " << s->init
                               << " is not going to be trained"
                               << (from.empty() ? "" : " (it is before --from " + from + ")")
                               << "; run with --from " << s->init
                               << ", or without --from to finish the earlier stages first");
  }
  return selected;
}

}  // namespace ctmq::plan
