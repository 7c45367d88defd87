// What Slurm knows about a run's jobs, for ctmq-status.
//
// RUN/slurm-jobs.tsv (written by slurm/submit.sh; docs/slurm.md): a header
// line "# stage<TAB>kind<TAB>job_id<TAB>submitted", then one row per submitted
// job: STAGE, train | eval | shard, the Slurm job id, the ISO 8601 time of
// submission. A resubmission appends rows; the last row per (stage, kind)
// wins.
//
// The job states come from one `squeue --noheader --jobs=ID,... --format=%i|%T|%r`
// (queued and running jobs, with the reason a job waits) and one
// `sacct --noheader --parsable2 --jobs=ID,... --format=JobID,State,ExitCode`
// (jobs that ended: how, and the exit code). Either may be missing or fail (no
// Slurm here, no accounting database): then the file-based state stands and
// SlurmView::notes says what could not be asked. The programs are $CTMQ_SQUEUE
// and $CTMQ_SACCT when set (tests), else squeue and sacct on PATH.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ctmq/status/run_status.h"

namespace ctmq::status {

// (stage, kind) -> job id, the last row of each winning. Throws ctmq::Error
// naming the file and line for a malformed row or a job id that is not a
// Slurm id (digits, optionally _digits for an array task).
std::map<std::pair<std::string, std::string>, std::string> parse_slurm_jobs(
    const std::string& text, const std::string& source);

struct JobState {
  std::string state;      // Slurm's state word: PENDING, RUNNING, FAILED, PREEMPTED...
  std::string reason;     // squeue's %r for a queued job ("Dependency", "Resources")
  std::string exit_code;  // sacct's ExitCode "CODE:SIGNAL" of an ended job
};

// squeue's "ID|STATE|REASON" lines -> id -> state. Lines of another form are skipped.
std::map<std::string, JobState> parse_squeue(const std::string& text);
// sacct's "JobID|State|ExitCode" lines -> id -> state; job steps ("ID.batch")
// are skipped, "CANCELLED by UID" is CANCELLED, the last line of an id wins.
std::map<std::string, JobState> parse_sacct(const std::string& text);

struct SlurmView {
  std::map<std::string, JobState> jobs;  // squeue's states over sacct's
  std::vector<std::string> notes;        // "squeue: not found; ..." for the table's footer
};

// Asks squeue once and sacct once about `job_ids` (none asked when empty).
SlurmView query_slurm(const std::vector<std::string>& job_ids);

// Sets train_job/eval_job from `jobs` and lets Slurm's view decide what the
// files cannot: a queued job is kPending (with its reason), a running one
// kRunning (unless the stage waits for its init: a job of several stages runs
// an earlier one), one that ended without DONE kStopped ("failed (exit 1)",
// "preempted", "timeout", "cancelled", ...). A DONE stage stays kDone, with
// the state of its evaluation job (else of its training job, which evaluates
// after training) as detail while eval.json is missing.
void apply_slurm(std::vector<StageStatus>& statuses,
                 const std::map<std::pair<std::string, std::string>, std::string>& jobs,
                 const SlurmView& view);

}  // namespace ctmq::status
