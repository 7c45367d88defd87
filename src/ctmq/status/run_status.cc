#include "ctmq/status/run_status.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/common/json_integer.h"
#include "ctmq/train/checkpoint.h"
#include "ctmq/train/stage_lock.h"

namespace ctmq::status {
namespace {

// What metrics.jsonl tells about progress: its newest training record, and
// the step rate of the process that wrote it.
struct Progress {
  int64_t global_step = -1;
  int64_t total_steps = -1;
  double images_per_s = -1;
  double steps_per_s = -1;
};

// A file that cannot be read, or a torn line, gives what the readable
// records say; records of other kinds ("kind": "eval") are skipped.
Progress read_progress(const std::string& path, int epochs) {
  Progress p;
  if (!std::filesystem::exists(path)) return p;
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error&) {
    return p;
  }
  std::istringstream in(text);
  std::string line;
  nlohmann::json first, last;  // first and newest record of the newest process
  while (std::getline(in, line)) {
    auto r = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    auto number_or_absent = [&r](const char* key) {
      return !r.contains(key) || r[key].is_number();
    };
    if (r.is_discarded() || !r.is_object() || (r.contains("kind") && !r["kind"].is_string()) ||
        r.value("kind", "train") != "train" || !number_or_absent("elapsed_s") ||
        !number_or_absent("images_per_s") || !r.contains("global_step") ||
        !json_integer<int64_t>(r["global_step"]) ||
        !json_integer_or<int64_t>(r, "total_steps", 0) ||
        !json_integer_or<int64_t>(r, "epoch", 0) || !json_integer_or<int64_t>(r, "step", 0)) {
      continue;  // torn, another kind, or integers that are not (common/json_integer.h)
    }
    // elapsed_s counts from each process's start: a smaller value is a resume.
    if (first.is_null() || r.value("elapsed_s", 0.0) < last.value("elapsed_s", 0.0)) first = r;
    last = r;
  }
  if (last.is_null()) return p;
  // Every integer below was checked when its record was kept.
  auto integer = [](const nlohmann::json& r, const char* key, int64_t fallback) {
    return *json_integer_or<int64_t>(r, key, fallback);
  };
  p.global_step = integer(last, "global_step", 0);
  p.images_per_s = last.value("images_per_s", -1.0);
  const int64_t epoch = integer(last, "epoch", 0);
  if (integer(last, "total_steps", 0) > 0) {
    p.total_steps = integer(last, "total_steps", 0);
  } else if (epoch >= 1) {
    // Records older than total_steps: global_step = epoch x steps per epoch + step.
    const int64_t per_epoch = (p.global_step - integer(last, "step", 0)) / epoch;
    if (per_epoch > 0) p.total_steps = per_epoch * epochs;
  }
  const double seconds = last.value("elapsed_s", 0.0) - first.value("elapsed_s", 0.0);
  const int64_t steps = p.global_step - integer(first, "global_step", 0);
  if (seconds > 0 && steps > 0) p.steps_per_s = static_cast<double>(steps) / seconds;
  return p;
}

int64_t newest_checkpoint_step(const std::string& directory) {
  const std::vector<std::string> files = train::CheckpointStore(directory).list();
  if (files.empty()) return -1;
  const std::string name = std::filesystem::path(files.front()).filename().string();
  return std::stoll(name.substr(5, name.size() - 8));  // step-NNNNNNNN.pt, checked by list()
}

std::optional<double> read_top1(const std::string& path) {
  try {
    const auto e = nlohmann::json::parse(read_file(path));
    if (e.is_object() && e.contains("top1") && e["top1"].is_number())
      return e["top1"].get<double>();
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

int64_t done_steps(const std::string& note_path) {
  try {
    return nlohmann::json::parse(read_file(note_path)).value("global_step", -1L);
  } catch (const std::exception&) {
    return -1;
  }
}

bool done_quietly(const RunLayout& run, const std::string& stage) {
  try {
    return run.is_done(stage);
  } catch (const Error&) {
    return false;
  }
}

StageStatus read_stage(const RunLayout& run, const plan::Stage& stage) {
  StageStatus s;
  s.stage = &stage;
  const std::string& name = stage.name;
  bool done = false;
  try {
    done = run.is_done(name);
  } catch (const Error& e) {
    s.state = StageState::kDamaged;
    s.detail = e.what();
  }
  s.evaluated = std::filesystem::exists(run.eval(name));
  if (s.evaluated) s.top1 = read_top1(run.eval(name));
  const Progress progress = read_progress(run.metrics(name), stage.epochs);
  s.images_per_s = progress.images_per_s;
  s.total_steps = progress.total_steps;
  const int64_t checkpoint = newest_checkpoint_step(run.checkpoints(name));
  s.step = s.checkpoint_step = checkpoint;
  if (const auto lock = train::read_stage_lock(run.stage(name))) {
    if (lock->liveness != train::StageLockHolder::Liveness::kGone) {
      s.lock_holder = lock->description;
      s.lock_job = lock->slurm_job_id;
    }
  }
  if (s.state == StageState::kDamaged) return s;
  if (done) {
    s.state = StageState::kDone;
    s.step = done_steps(run.done_marker(name));
    if (s.step > 0) s.total_steps = s.step;
  } else if (!s.lock_holder.empty()) {
    s.state = StageState::kRunning;
    s.step = std::max(checkpoint, progress.global_step);
  } else if (checkpoint >= 0) {
    s.state = StageState::kPartial;
  } else {
    const bool init_is_stage = stage.init != "none" && stage.init.find(':') == std::string::npos;
    if (init_is_stage && !done_quietly(run, stage.init)) {
      s.state = StageState::kWaiting;
      s.detail = stage.init;
    } else {
      s.state = StageState::kNotStarted;
    }
  }
  if (s.state != StageState::kDone && s.total_steps > 0 && progress.steps_per_s > 0 &&
      s.step >= 0) {
    s.eta_s =
        static_cast<double>(std::max<int64_t>(0, s.total_steps - s.step)) / progress.steps_per_s;
  }
  return s;
}

}  // namespace

std::vector<StageStatus> read_run_status(const RunLayout& run, const plan::StagePlan& plan) {
  std::vector<StageStatus> all;
  for (const plan::Stage& stage : plan.stages) all.push_back(read_stage(run, stage));
  return all;
}

std::string state_name(const StageStatus& s) {
  switch (s.state) {
    case StageState::kDone:
      return s.evaluated ? "evaluated" : "done";
    case StageState::kRunning:
      return "running";
    case StageState::kPartial:
      return "partial";
    case StageState::kNotStarted:
      return "not-started";
    case StageState::kWaiting:
      return "waiting";
    case StageState::kPending:
      return "pending";
    case StageState::kStopped:
      return "stopped";
    case StageState::kDamaged:
      return "damaged";
  }
  CTMQ_FAIL("unknown stage state");
}

std::string state_text(const StageStatus& s) {
  std::string text;
  switch (s.state) {
    case StageState::kDone:
      text = s.evaluated ? "evaluated" : "DONE";
      break;
    case StageState::kRunning:
      text = "running";
      break;
    case StageState::kPartial:
      text = "partial";
      break;
    case StageState::kNotStarted:
      text = "not started";
      break;
    case StageState::kWaiting:
      return "waiting for " + s.detail;
    case StageState::kPending:
      return "pending (" + s.detail + ")";
    case StageState::kStopped:
      return s.detail;
    case StageState::kDamaged:
      return "damaged DONE";
  }
  return s.detail.empty() ? text : text + ", " + s.detail;
}

}  // namespace ctmq::status
