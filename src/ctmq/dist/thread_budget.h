// How many compute threads one rank should use.
//
// The default never oversubscribes the CPUs this process may run on, however
// they are restricted: the affinity mask (taskset, a launcher's binding,
// Slurm's task/affinity), the cgroup CPU quota (a container's --cpus, Slurm's
// cgroup), and the ranks that share them. The chosen count and the reason are
// logged by ctmq-train and ctmq-eval.
#pragma once

#include <optional>
#include <string>

namespace ctmq::dist {

// CPUs in this thread's affinity mask (sched_getaffinity); at least 1.
int affinity_cpus();

// The CPU limit of a cgroup quota, rounded up to whole CPUs: cgroup v2
// `cpu.max` ("QUOTA PERIOD" or "max PERIOD") of this process's cgroup and its
// ancestors, else cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`; the
// smallest one found. nullopt when there is none. `proc_self_cgroup` is the
// text of /proc/self/cgroup, `sysfs_root` normally /sys/fs/cgroup (tests pass
// their own).
std::optional<int> cgroup_cpu_limit(const std::string& proc_self_cgroup,
                                    const std::string& sysfs_root);
// The same for this process.
std::optional<int> cgroup_cpu_limit();

struct ThreadBudget {
  int threads = 1;     // >= 1
  std::string reason;  // one line for the log, e.g. "2 CPUs in the affinity mask / 1 rank"
};

// Threads per rank: `requested` if > 0; else SLURM_CPUS_PER_TASK (a per-task
// count), capped by the usable CPUs; else the usable CPUs divided by
// `ranks_on_node` (ranks bound to their own cores see one CPU each and get
// 1). Usable CPUs = min(affinity mask, cgroup quota).
ThreadBudget resolve_threads(int requested, int ranks_on_node);

// Data-loader worker threads of a rank (data::BatchLoader) whose compute
// threads are `rank_threads` (resolve_threads): 1, or 2 when the rank has 4
// CPUs or more. The workers sleep once `prefetch` batches are ready, so on a
// CPU rank they take from the intra-op threads only the loader's own work;
// each runs LibTorch on one thread (docs/choices.md, "Data loading").
int default_loader_workers(int rank_threads);

}  // namespace ctmq::dist
