#include "ctmq/status/run_status.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "ctmq/common/atomic_file.h"
#include "ctmq/status/status_table.h"
#include "ctmq/train/checkpoint.h"
#include "ctmq/train/stage_lock.h"
#include "test_support.h"

namespace ctmq::status {
namespace {

// c0-fp -> c1-w2a2 -> c1-w1a1; base-direct-w1a1 and base-step-w1a1 from c0-fp.
plan::StagePlan five_stages() {
  return ctmq::testing::stage_plan_of({{"c0-fp", 32, "none"},
                                       {"c1-w2a2", 2, "c0-fp"},
                                       {"c1-w1a1", 1, "c1-w2a2"},
                                       {"base-direct-w1a1", 1, "c0-fp"},
                                       {"base-step-w1a1", 1, "c0-fp"}},
                                      /*epochs=*/2);
}

// A real checkpoint of a tiny network at `step`, through the trainer's writer.
void save_checkpoint(const RunLayout& run, const std::string& stage, int64_t step) {
  torch::nn::Linear net(2, 2);
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.1));
  train::CheckpointMeta meta;
  meta.stage = stage;
  meta.architecture = "small-resnet";
  meta.global_step = step;
  train::CheckpointStore(run.checkpoints(stage)).save(meta, *net, sgd);
}

// metrics.jsonl training records (and an in-stage evaluation record, which
// the status must skip): `steps` at `seconds`, total `total` (0: not recorded).
void write_metrics(const RunLayout& run, const std::string& stage,
                   const std::vector<std::pair<int64_t, double>>& records, int64_t total,
                   int64_t steps_per_epoch) {
  std::ofstream out(run.metrics(stage));
  for (const auto& [step, seconds] : records) {
    out << R"({"kind":"train","stage":")" << stage << R"(","epoch":)"
        << (step - 1) / steps_per_epoch << R"(,"step":)" << (step - 1) % steps_per_epoch + 1
        << R"(,"global_step":)" << step;
    if (total > 0) out << R"(,"total_steps":)" << total;
    out << R"(,"images_per_s":)" << 100.0 * step << R"(,"elapsed_s":)" << seconds << "}\n";
  }
  out << R"({"kind":"eval","stage":")" << stage << R"(","global_step":999,"top1":50})"
      << "\n";
}

void finish(const RunLayout& run, const std::string& stage, int64_t steps) {
  write_file_atomically(run.final_weights(stage), "weights");
  run.mark_done(stage, "{\"global_step\": " + std::to_string(steps) + "}");
}

TEST(RunStatus, EachFileBasedStateFromTheRunDirectory) {
  testing::TempDir dir;
  const RunLayout run(dir.path());
  const plan::StagePlan plan = five_stages();
  finish(run, "c0-fp", 20);
  write_file_atomically(run.eval("c0-fp"), R"({"stage":"c0-fp","top1":81.25})");
  // c1-w2a2 stopped at its step-6 checkpoint; the log went on to step 7.
  save_checkpoint(run, "c1-w2a2", 4);
  save_checkpoint(run, "c1-w2a2", 6);
  write_metrics(run, "c1-w2a2", {{2, 1.0}, {4, 2.0}, {6, 3.0}, {7, 3.5}}, 20, 10);
  // base-direct-w1a1 runs in this very process (its lock), 2 steps/s; its
  // records predate total_steps: S comes from epoch and step (10 per epoch).
  std::filesystem::create_directories(run.stage("base-direct-w1a1"));
  train::StageLock lock(run.stage("base-direct-w1a1"));
  // A first process reached step 4; the resumed one logs from step 6 on.
  write_metrics(run, "base-direct-w1a1", {{2, 20.0}, {4, 50.0}, {6, 1.0}, {14, 5.0}}, 0, 10);

  const std::vector<StageStatus> s = read_run_status(run, plan);
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s[0].state, StageState::kDone);
  EXPECT_EQ(state_text(s[0]), "evaluated");
  ASSERT_TRUE(s[0].top1.has_value());
  EXPECT_DOUBLE_EQ(*s[0].top1, 81.25);
  EXPECT_EQ(s[0].step, 20);
  EXPECT_EQ(s[0].total_steps, 20);

  EXPECT_EQ(s[1].state, StageState::kPartial);
  EXPECT_EQ(s[1].step, 6) << "a rerun resumes at the newest checkpoint, not the log's last step";
  EXPECT_EQ(s[1].total_steps, 20);
  EXPECT_DOUBLE_EQ(s[1].images_per_s, 700.0);

  EXPECT_EQ(s[2].state, StageState::kWaiting);
  EXPECT_EQ(state_text(s[2]), "waiting for c1-w2a2");

  EXPECT_EQ(s[3].state, StageState::kRunning);
  EXPECT_EQ(s[3].step, 14);
  EXPECT_EQ(s[3].total_steps, 20);  // (14 - 4) steps in epoch 1 before, x 2 epochs
  // The newest process: 8 steps in 4 s; 6 steps left.
  EXPECT_NEAR(s[3].eta_s, 3.0, 1e-9);
  EXPECT_NE(s[3].lock_holder.find("pid " + std::to_string(::getpid())), std::string::npos);

  EXPECT_EQ(s[4].state, StageState::kNotStarted);
  EXPECT_EQ(s[4].step, -1);

  const std::string table = format_status_table(s, {"squeue: not asked"});
  EXPECT_NE(table.find("c1-w2a2"), std::string::npos) << table;
  EXPECT_NE(table.find("6/20"), std::string::npos) << table;
  EXPECT_NE(table.find("81.25"), std::string::npos) << table;
  EXPECT_NE(table.find("note: squeue: not asked"), std::string::npos) << table;
  const std::string tsv = format_status_tsv(s);
  EXPECT_NE(tsv.find("c1-w1a1\t1\t1\t2\twaiting\tc1-w2a2\t"), std::string::npos) << tsv;
}

TEST(RunStatus, ADamagedDoneNoteOrAStaleLockIsShownNotThrown) {
  testing::TempDir dir;
  const RunLayout run(dir.path());
  const plan::StagePlan plan = five_stages();
  finish(run, "c0-fp", 20);
  write_file_atomically(run.done_marker("c0-fp"), "not json");
  // A lock whose holder (on this host) is gone: the stage is not running.
  std::filesystem::create_directories(run.stage("c1-w2a2"));
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  write_file_atomically(run.stage("c1-w2a2") + "/LOCK",
                        std::string(R"({"host":")") + host +
                            R"(","pid":999999999,"start_time":"1","slurm_job_id":""})");
  const std::vector<StageStatus> s = read_run_status(run, plan);
  EXPECT_EQ(s[0].state, StageState::kDamaged);
  EXPECT_NE(s[0].detail.find("is not valid JSON"), std::string::npos) << s[0].detail;
  EXPECT_EQ(s[1].state, StageState::kWaiting) << state_text(s[1]);
  EXPECT_TRUE(s[1].lock_holder.empty());
}

// Damaged metrics.jsonl lines (a float past int64's range, fields of the
// wrong type) are skipped like torn lines, not thrown or cast (the cast was
// undefined behaviour; common/json_integer.h).
TEST(RunStatus, MetricsRecordsOfTheWrongTypesAreSkipped) {
  testing::TempDir dir;
  const RunLayout run(dir.path());
  const plan::StagePlan plan = five_stages();
  finish(run, "c0-fp", 20);
  save_checkpoint(run, "c1-w2a2", 6);
  write_metrics(run, "c1-w2a2", {{2, 1.0}, {4, 2.0}, {6, 3.0}}, 20, 10);
  {
    std::ofstream out(run.metrics("c1-w2a2"), std::ios::app);
    out << R"({"kind":"train","global_step":1e300,"total_steps":20,"elapsed_s":4})"
        << "\n"
        << R"({"kind":5,"global_step":7,"elapsed_s":4})"
        << "\n"
        << R"({"kind":"train","global_step":7,"total_steps":2.5e40,"elapsed_s":4})"
        << "\n"
        << R"({"kind":"train","global_step":7,"epoch":"zero","elapsed_s":4})"
        << "\n"
        << R"({"kind":"train","global_step":7,"elapsed_s":"late"})"
        << "\n";
  }
  std::vector<StageStatus> s;
  ASSERT_NO_THROW(s = read_run_status(run, plan));
  EXPECT_EQ(s[1].total_steps, 20);
  EXPECT_EQ(s[1].state, StageState::kPartial) << state_text(s[1]);
}

}  // namespace
}  // namespace ctmq::status
