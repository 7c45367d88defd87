// One trainer per stage directory: two jobs training the same stage at once
// (a duplicate submission, a requeue racing its original) would interleave
// checkpoints and both write final.pt.
//
// The lock is the file RUN/stages/STAGE/LOCK, created with O_EXCL (atomic on
// local file systems and on NFSv3+/Lustre/GPFS), holding one JSON object that
// names its holder: host, pid, the process's start time (so a reused pid is
// not mistaken for the holder), Slurm job id, and when it was taken.
//
// A lock is stale, and is taken over with a warning, when its holder is on
// this host and that process no longer exists, or when it names the Slurm
// job that now runs (a requeued job starts again under the same id). Any
// other existing lock is refused with ctmq::Error naming the holder and the
// file, and what to do when the holder is really gone.
#pragma once

#include <optional>
#include <string>

namespace ctmq::train {

// The holder of a stage's lock as another process sees it (ctmq-status),
// without taking or changing the lock.
struct StageLockHolder {
  enum class Liveness {
    kAlive,    // on this host, and that very process still runs
    kGone,     // on this host, and that process no longer exists (a stale lock)
    kUnknown,  // on another host (a Slurm node): only its job's state can tell
  };
  Liveness liveness = Liveness::kUnknown;
  std::string host;
  std::string slurm_job_id;  // "" outside Slurm
  std::string description;   // "host H pid P (Slurm job J) since T", for messages
};

// The holder named by `stage_dir`/LOCK; nullopt when there is no lock. An
// unreadable lock (a writer that died between create and write) is kGone.
std::optional<StageLockHolder> read_stage_lock(const std::string& stage_dir);

class StageLock {
 public:
  // Takes the lock of `stage_dir` (created if needed) or throws ctmq::Error.
  explicit StageLock(const std::string& stage_dir);
  // Removes the lock file if it still names this process.
  ~StageLock();
  StageLock(const StageLock&) = delete;
  StageLock& operator=(const StageLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string holder_;  // the JSON this process wrote
};

}  // namespace ctmq::train
