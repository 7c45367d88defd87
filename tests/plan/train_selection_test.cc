#include "ctmq/plan/train_selection.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "ctmq/common/atomic_file.h"
#include "test_support.h"

namespace ctmq::plan {
namespace {

using ctmq::testing::error_of;

// c0-fp -> c1-w2a2 -> c1-w1a1, and a baseline that starts from c0-fp.
StagePlan four_stages() {
  return ctmq::testing::stage_plan_of({{"c0-fp", 32, "none"},
                                       {"c1-w2a2", 2, "c0-fp"},
                                       {"c1-w1a1", 1, "c1-w2a2"},
                                       {"base-direct-w1a1", 1, "c0-fp"}},
                                      /*epochs=*/1);
}

void finish(const RunLayout& run, const std::string& stage) {
  write_file_atomically(run.final_weights(stage), "weights");
  run.mark_done(stage, "{}");
}

std::vector<std::string> names(const std::vector<const Stage*>& stages) {
  std::vector<std::string> out;
  for (const Stage* s : stages) out.push_back(s->name);
  return out;
}

TEST(StagesToTrain, WithoutFromEveryStageThatIsNotDoneInPlanOrder) {
  testing::TempDir dir;
  const RunLayout run(dir.path());
  const StagePlan plan = four_stages();
  EXPECT_EQ(names(stages_to_train(plan, run, "")),
            (std::vector<std::string>{"c0-fp", "c1-w2a2", "c1-w1a1", "base-direct-w1a1"}));
  finish(run, "c0-fp");
  finish(run, "c1-w1a1");  // DONE out of order: still skipped
  EXPECT_EQ(names(stages_to_train(plan, run, "")),
            (std::vector<std::string>{"c1-w2a2", "base-direct-w1a1"}));
  finish(run, "c1-w2a2");
  finish(run, "base-direct-w1a1");
  EXPECT_TRUE(stages_to_train(plan, run, "").empty());
}

TEST(StagesToTrain, FromRetrainsThatStageAndEveryLaterOneAndNeverAnEarlierOne) {
  testing::TempDir dir;
  const RunLayout run(dir.path());
  const StagePlan plan = four_stages();
  for (const Stage& s : plan.stages) finish(run, s.name);
  EXPECT_EQ(names(stages_to_train(plan, run, "c1-w2a2")),
            (std::vector<std::string>{"c1-w2a2", "c1-w1a1", "base-direct-w1a1"}));
  EXPECT_EQ(names(stages_to_train(plan, run, "c0-fp")).size(), 4u);
}

// submit.sh's rule, now run-chain.sh's too: only the inits of the stages to
// train must be DONE, not every earlier stage.
TEST(StagesToTrain, FromNeedsOnlyTheInitsOfTheStagesToTrainDone) {
  testing::TempDir dir;
  const RunLayout run(dir.path());
  const StagePlan plan = four_stages();
  finish(run, "c0-fp");  // c1-w2a2 and c1-w1a1 never trained
  EXPECT_EQ(names(stages_to_train(plan, run, "base-direct-w1a1")),
            (std::vector<std::string>{"base-direct-w1a1"}));
  const std::string error = error_of([&] { stages_to_train(plan, run, "c1-w1a1"); });
  EXPECT_NE(error.find("stage c1-w1a1 starts from c1-w2a2"), std::string::npos) << error;
  EXPECT_NE(error.find("--from c1-w2a2"), std::string::npos) << error;
  EXPECT_NE(error.find(run.final_weights("c1-w2a2")), std::string::npos) << error;
}

TEST(StagesToTrain, AnInitThatIsDoneWithoutItsFinalWeightsIsRefused) {
  testing::TempDir dir;
  const RunLayout run(dir.path());
  const StagePlan plan = four_stages();
  finish(run, "c0-fp");
  std::filesystem::remove(run.final_weights("c0-fp"));
  const std::string error = error_of([&] { stages_to_train(plan, run, "c1-w2a2"); });
  EXPECT_NE(error.find(run.final_weights("c0-fp") + " is missing"), std::string::npos) << error;
}

TEST(StagesToTrain, AnUnknownFromStageAMissingPretrainedFileOrADamagedNoteIsRefused) {
  testing::TempDir dir;
  const RunLayout run(dir.path());
  StagePlan plan = four_stages();
  std::string error = error_of([&] { stages_to_train(plan, run, "c9-w7a7"); });
  EXPECT_NE(error.find("--from c9-w7a7: no such stage"), std::string::npos) << error;
  EXPECT_NE(error.find("c0-fp, c1-w2a2"), std::string::npos) << error;

  plan.stages[0].init = "weights:" + dir.path() + "/absent.pt";
  error = error_of([&] { stages_to_train(plan, run, ""); });
  EXPECT_NE(error.find(dir.path() + "/absent.pt does not exist"), std::string::npos) << error;
  write_file_atomically(dir.path() + "/absent.pt", "weights");
  EXPECT_EQ(stages_to_train(plan, run, "").size(), 4u);

  finish(run, "c0-fp");
  write_file_atomically(run.done_marker("c0-fp"), "{\"stage\": \"c0-fp\"}");
  error = error_of([&] { stages_to_train(plan, run, ""); });
  EXPECT_NE(error.find("DONE note " + run.done_marker("c0-fp")), std::string::npos) << error;
  // With --from c0-fp the damaged stage is retrained: nothing reads its note.
  EXPECT_EQ(stages_to_train(plan, run, "c0-fp").size(), 4u);
}

}  // namespace
}  // namespace ctmq::plan
