#include "ctmq/status/slurm_jobs.h"

#include <algorithm>
#include <cctype>
#include <regex>
#include <sstream>

#include "ctmq/common/error.h"
#include "ctmq/status/command_output.h"

namespace ctmq::status {
namespace {

std::vector<std::string> split(const std::string& line, char separator) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, separator)) fields.push_back(field);
  if (!line.empty() && line.back() == separator) fields.push_back("");
  return fields;
}

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

bool is_job_id(const std::string& id) {
  static const std::regex pattern("[0-9]+(_[0-9]+)?");
  return std::regex_match(id, pattern);
}

std::string first_line(const std::string& text) {
  const std::string line = trim(text.substr(0, text.find('\n')));
  return line.empty() ? "no message" : line;
}

// Asks `name` (through env `variable`) with `args`; returns its stdout, or
// adds a note and returns nullopt-like "" with ok = false.
bool ask(const char* variable, const std::string& name, const std::vector<std::string>& args,
         std::string& out, std::vector<std::string>& notes) {
  std::vector<std::string> argv = {program_from_env(variable, name)};
  argv.insert(argv.end(), args.begin(), args.end());
  const CommandOutput r = run_command(argv);
  if (!r.started) {
    notes.push_back(name + ": " + argv[0] + " could not be run (not installed here?); " +
                    (name == "squeue" ? "queued and running jobs" : "how ended jobs ended") +
                    " unknown");
    return false;
  }
  if (r.exit_code != 0) {
    notes.push_back(name + " failed (exit " + std::to_string(r.exit_code) +
                    "): " + first_line(r.err.empty() ? r.out : r.err));
    return false;
  }
  out = r.out;
  return true;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

bool is_queued(const std::string& state) {
  return state == "PENDING" || state == "REQUEUED" || state == "REQUEUE_HOLD" ||
         state == "REQUEUE_FED" || state == "SUSPENDED" || state == "RESV_DEL_HOLD";
}

bool is_running(const std::string& state) {
  return state == "RUNNING" || state == "CONFIGURING" || state == "COMPLETING" ||
         state == "STAGE_OUT" || state == "RESIZING" || state == "SIGNALING";
}

// "failed (exit 1)", "preempted", "timeout"... for a job that ended.
std::string ended_text(const JobState& job) {
  const std::string code = job.exit_code.substr(0, job.exit_code.find(':'));
  if (job.state == "FAILED")
    return code == "75" ? "preempted (exit 75)" : "failed (exit " + code + ")";
  if (job.state == "COMPLETED") return "ended without DONE (exit " + code + ")";
  if (job.state == "OUT_OF_MEMORY") return "out of memory";
  if (job.state == "NODE_FAIL") return "node failure";
  return lower(job.state);  // preempted, timeout, cancelled, boot_fail, deadline
}

// The state of a job as a phrase for a detail column ("eval pending (Dependency)").
std::string job_phrase(const JobState& job) {
  if (is_queued(job.state))
    return "pending (" + (job.reason.empty() ? job.state : job.reason) + ")";
  if (is_running(job.state)) return "running";
  return ended_text(job);
}

}  // namespace

std::map<std::pair<std::string, std::string>, std::string> parse_slurm_jobs(
    const std::string& text, const std::string& source) {
  std::map<std::pair<std::string, std::string>, std::string> jobs;
  std::istringstream in(text);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (trim(line).empty() || line[0] == '#') continue;
    const std::string where = source + ":" + std::to_string(number);
    const std::vector<std::string> f = split(line, '\t');
    CTMQ_CHECK(f.size() >= 3, where
                                  << ": expected 'stage<TAB>kind<TAB>job_id<TAB>submitted', found '"
                                  << line << "'; the file is written by slurm/submit.sh");
    CTMQ_CHECK(f[1] == "train" || f[1] == "eval" || f[1] == "shard",
               where << ": kind '" << f[1] << "' is not train, eval or shard");
    CTMQ_CHECK(is_job_id(f[2]), where << ": '" << f[2] << "' is not a Slurm job id");
    jobs[{f[0], f[1]}] = f[2];
  }
  return jobs;
}

std::map<std::string, JobState> parse_squeue(const std::string& text) {
  std::map<std::string, JobState> jobs;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const std::vector<std::string> f = split(trim(line), '|');
    if (f.size() < 2 || !is_job_id(f[0])) continue;
    jobs[f[0]] = {f[1], f.size() > 2 ? f[2] : "", ""};
  }
  return jobs;
}

std::map<std::string, JobState> parse_sacct(const std::string& text) {
  std::map<std::string, JobState> jobs;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const std::vector<std::string> f = split(trim(line), '|');
    if (f.size() < 2 || !is_job_id(f[0])) continue;            // steps: "123.batch", "123.0"
    const std::string state = f[1].substr(0, f[1].find(' '));  // "CANCELLED by 1000"
    jobs[f[0]] = {state, "", f.size() > 2 ? f[2] : ""};
  }
  return jobs;
}

SlurmView query_slurm(const std::vector<std::string>& job_ids) {
  SlurmView view;
  if (job_ids.empty()) return view;
  std::string list;
  for (const std::string& id : job_ids) list += (list.empty() ? "" : ",") + id;
  std::string out;
  if (ask("CTMQ_SACCT", "sacct",
          {"--noheader", "--parsable2", "--jobs=" + list, "--format=JobID,State,ExitCode"}, out,
          view.notes)) {
    view.jobs = parse_sacct(out);
  }
  // squeue's view of queued and running jobs is the live one: it wins.
  if (ask("CTMQ_SQUEUE", "squeue", {"--noheader", "--jobs=" + list, "--format=%i|%T|%r"}, out,
          view.notes)) {
    for (auto& [id, job] : parse_squeue(out)) view.jobs[id] = job;
  }
  return view;
}

void apply_slurm(std::vector<StageStatus>& statuses,
                 const std::map<std::pair<std::string, std::string>, std::string>& jobs,
                 const SlurmView& view) {
  auto find = [&](const std::string& stage, const char* kind) -> std::string {
    const auto it = jobs.find({stage, kind});
    return it == jobs.end() ? "" : it->second;
  };
  for (StageStatus& s : statuses) {
    s.train_job = find(s.stage->name, "train");
    s.eval_job = find(s.stage->name, "eval");
    if (s.state == StageState::kDamaged) continue;
    if (s.state == StageState::kDone) {
      // Its evaluation job, or the training job that evaluates after training.
      const auto eval = view.jobs.find(s.eval_job.empty() ? s.train_job : s.eval_job);
      if (!s.evaluated && eval != view.jobs.end() && eval->second.state != "COMPLETED")
        s.detail = "eval " + job_phrase(eval->second);
      continue;
    }
    // The lock's own job is the one that trains now (a resubmission may not
    // be recorded yet); else the last recorded training job.
    const std::string id = !s.lock_job.empty() ? s.lock_job : s.train_job;
    const auto job = view.jobs.find(id);
    if (job == view.jobs.end()) continue;  // not asked, or too old for Slurm to know
    const JobState& j = job->second;
    if (is_running(j.state)) {
      // A job that trains several stages (STAGES_PER_JOB) runs an earlier one first.
      if (s.state == StageState::kWaiting) continue;
      s.state = StageState::kRunning;
      s.detail.clear();
    } else if (is_queued(j.state)) {
      s.state = StageState::kPending;
      s.detail = j.reason.empty() || j.reason == "None" ? lower(j.state) : j.reason;
    } else {
      s.state = StageState::kStopped;
      s.detail = ended_text(j);
      s.eta_s = -1;
      if (s.checkpoint_step >= 0) s.step = s.checkpoint_step;
    }
  }
}

}  // namespace ctmq::status
