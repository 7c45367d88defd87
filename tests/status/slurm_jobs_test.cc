#include "ctmq/status/slurm_jobs.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "ctmq/common/atomic_file.h"
#include "test_support.h"

namespace ctmq::status {
namespace {

using ctmq::testing::error_of;

// A stand-in for squeue or sacct: records its arguments in ARGS_FILE and
// prints `output` (the recorded output of the real command) or fails.
std::string fake_command(const std::string& dir, const std::string& name, const std::string& output,
                         int exit_code = 0) {
  const std::string path = dir + "/" + name;
  write_file_atomically(path, "#!/bin/sh\necho \"$@\" >'" + path + ".args'\ncat <<'EOF'\n" +
                                  output + "EOF\nexit " + std::to_string(exit_code) + "\n");
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  return path;
}

// Sets an environment variable for the test's lifetime.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

TEST(SlurmJobs, TheJobsFileKeepsTheLastRowPerStageAndKind) {
  const auto jobs = parse_slurm_jobs(
      "# stage\tkind\tjob_id\tsubmitted\n"
      "c0-fp\ttrain\t100\t2026-11-30T01:00:00Z\n"
      "c0-fp\teval\t101\t2026-11-30T01:00:00Z\n"
      "c0-fp\ttrain\t200\t2026-11-30T02:00:00Z\n"
      "-\tshard\t99_3\t2026-11-30T00:00:00Z\n",
      "RUN/slurm-jobs.tsv");
  EXPECT_EQ(jobs.size(), 3u);
  EXPECT_EQ(jobs.at({"c0-fp", "train"}), "200");
  EXPECT_EQ(jobs.at({"c0-fp", "eval"}), "101");
  std::string error = error_of([] { parse_slurm_jobs("c0-fp\ttrain\t12;x\tT\n", "J"); });
  EXPECT_NE(error.find("J:1: '12;x' is not a Slurm job id"), std::string::npos) << error;
  error = error_of([] { parse_slurm_jobs("# h\nc0-fp\ttest\t12\tT\n", "J"); });
  EXPECT_NE(error.find("J:2: kind 'test'"), std::string::npos) << error;
}

TEST(SlurmJobs, SqueueAndSacctAreAskedOnceEachAndTheirStatesApplied) {
  testing::TempDir dir;
  // Recorded output: squeue knows the queued and running jobs; sacct every
  // job, with steps, a cancellation by a user and a preemption.
  ScopedEnv squeue("CTMQ_SQUEUE", fake_command(dir.path(), "squeue",
                                               "101|RUNNING|None\n"
                                               "102|PENDING|Dependency\n"));
  ScopedEnv sacct("CTMQ_SACCT", fake_command(dir.path(), "sacct",
                                             "100|COMPLETED|0:0\n"
                                             "100.batch|COMPLETED|0:0\n"
                                             "101|RUNNING|0:0\n"
                                             "102|PENDING|0:0\n"
                                             "103|FAILED|2:0\n"
                                             "103.batch|FAILED|2:0\n"
                                             "104|CANCELLED by 1000|0:15\n"
                                             "105|PREEMPTED|0:0\n"));
  const SlurmView view = query_slurm({"100", "101", "102", "103", "104", "105"});
  EXPECT_TRUE(view.notes.empty());
  EXPECT_EQ(read_file(dir.path() + "/squeue.args"),
            "--noheader --jobs=100,101,102,103,104,105 --format=%i|%T|%r\n");
  EXPECT_EQ(read_file(dir.path() + "/sacct.args"),
            "--noheader --parsable2 --jobs=100,101,102,103,104,105 "
            "--format=JobID,State,ExitCode\n");
  EXPECT_EQ(view.jobs.at("102").reason, "Dependency");
  EXPECT_EQ(view.jobs.at("104").state, "CANCELLED");
  EXPECT_EQ(view.jobs.at("103").exit_code, "2:0");

  plan::StagePlan plan;
  for (const char* name : {"a", "b", "c", "d", "e", "f", "g"}) {
    plan::Stage s;
    s.name = name;
    plan.stages.push_back(s);
  }
  std::vector<StageStatus> statuses(7);
  for (size_t i = 0; i < 7; ++i) statuses[i].stage = &plan.stages[i];
  statuses[0].state = StageState::kDone;  // trained by 100, its evaluation waits
  statuses[1].state = StageState::kPartial;
  statuses[1].step = statuses[1].checkpoint_step = 40;
  statuses[2].state = StageState::kWaiting;
  statuses[3].state = StageState::kNotStarted;
  statuses[4].state = StageState::kPartial;
  // One job (101) trains b, then f, then evaluates g: f waits for b, g is DONE.
  statuses[5].state = StageState::kWaiting;
  statuses[5].detail = "b";
  statuses[6].state = StageState::kDone;
  const std::map<std::pair<std::string, std::string>, std::string> jobs = {
      {{"a", "train"}, "100"}, {{"a", "eval"}, "102"},  {{"b", "train"}, "101"},
      {{"c", "train"}, "103"}, {{"d", "train"}, "104"}, {{"e", "train"}, "105"},
      {{"f", "train"}, "101"}, {{"g", "train"}, "101"}};
  apply_slurm(statuses, jobs, view);
  EXPECT_EQ(state_text(statuses[0]), "DONE, eval pending (Dependency)");
  EXPECT_EQ(statuses[0].eval_job, "102");
  EXPECT_EQ(statuses[1].state, StageState::kRunning);
  EXPECT_EQ(state_text(statuses[2]), "failed (exit 2)");
  EXPECT_EQ(state_text(statuses[3]), "cancelled");
  EXPECT_EQ(state_text(statuses[4]), "preempted");
  EXPECT_EQ(state_text(statuses[5]), "waiting for b");
  EXPECT_EQ(state_text(statuses[6]), "DONE, eval running");
}

TEST(SlurmJobs, WithoutSlurmTheFileStateStandsAndTheNotesSayWhy) {
  testing::TempDir dir;
  ScopedEnv squeue("CTMQ_SQUEUE", dir.path() + "/no-such-squeue");
  ScopedEnv sacct(
      "CTMQ_SACCT",
      fake_command(dir.path(), "sacct", "sacct: error: Slurm accounting storage is disabled\n", 1));
  const SlurmView view = query_slurm({"7"});
  EXPECT_TRUE(view.jobs.empty());
  ASSERT_EQ(view.notes.size(), 2u);
  EXPECT_NE(view.notes[0].find("accounting storage is disabled"), std::string::npos)
      << view.notes[0];
  EXPECT_NE(view.notes[1].find("could not be run"), std::string::npos) << view.notes[1];

  plan::StagePlan plan;
  plan.stages.resize(1);
  plan.stages[0].name = "a";
  std::vector<StageStatus> statuses(1);
  statuses[0].stage = &plan.stages[0];
  statuses[0].state = StageState::kPartial;
  apply_slurm(statuses, {{{"a", "train"}, "7"}}, view);
  EXPECT_EQ(statuses[0].state, StageState::kPartial);
  EXPECT_EQ(statuses[0].train_job, "7");
}

}  // namespace
}  // namespace ctmq::status
