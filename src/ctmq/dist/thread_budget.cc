#include "ctmq/dist/thread_budget.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ctmq::dist {
namespace {

std::optional<std::string> read_first_line(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

std::optional<int> cpus_of_quota(double quota, double period) {
  if (quota <= 0 || period <= 0) return std::nullopt;  // -1 or "max": no limit
  return std::max(1, static_cast<int>(std::ceil(quota / period)));
}

void keep_smaller(std::optional<int>& best, std::optional<int> candidate) {
  if (candidate && (!best || *candidate < *best)) best = candidate;
}

// cgroup v2: cpu.max of `group` and every ancestor up to the root.
std::optional<int> v2_limit(const std::filesystem::path& root, std::filesystem::path group) {
  std::optional<int> best;
  while (true) {
    if (auto line = read_first_line(root / group.relative_path() / "cpu.max")) {
      std::istringstream fields(*line);
      std::string quota;
      double period = 0;
      if (fields >> quota >> period && quota != "max")
        keep_smaller(best, cpus_of_quota(std::atof(quota.c_str()), period));
    }
    if (group == group.root_path() || group.empty()) break;
    group = group.parent_path();
  }
  return best;
}

}  // namespace

int affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

std::optional<int> cgroup_cpu_limit(const std::string& proc_self_cgroup,
                                    const std::string& sysfs_root) {
  const std::filesystem::path root(sysfs_root);
  std::optional<int> best;
  std::istringstream lines(proc_self_cgroup);
  std::string line;
  while (std::getline(lines, line)) {
    // "ID:CONTROLLERS:PATH"; v2 is "0::PATH".
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::filesystem::path group(line.substr(second + 1));
    if (controllers.empty()) {
      keep_smaller(best, v2_limit(root, group));
      continue;
    }
    std::istringstream names(controllers);
    std::string name;
    bool has_cpu = false;
    while (std::getline(names, name, ',')) has_cpu = has_cpu || name == "cpu";
    if (!has_cpu) continue;
    const std::filesystem::path dir = root / controllers / group.relative_path();
    auto quota = read_first_line(dir / "cpu.cfs_quota_us");
    auto period = read_first_line(dir / "cpu.cfs_period_us");
    if (quota && period)
      keep_smaller(best, cpus_of_quota(std::atof(quota->c_str()), std::atof(period->c_str())));
  }
  return best;
}

std::optional<int> cgroup_cpu_limit() {
  std::ifstream in("/proc/self/cgroup");
  std::stringstream text;
  text << in.rdbuf();
  return cgroup_cpu_limit(text.str(), "/sys/fs/cgroup");
}

ThreadBudget resolve_threads(int requested, int ranks_on_node) {
  if (requested > 0) return {requested, "--threads " + std::to_string(requested)};
  const int mask = affinity_cpus();
  const std::optional<int> quota = cgroup_cpu_limit();
  const int usable = quota ? std::min(mask, *quota) : mask;
  const std::string usable_why =
      std::to_string(mask) + " CPU(s) in the affinity mask" +
      (quota ? ", cgroup quota " + std::to_string(*quota) : std::string(", no cgroup quota"));
  if (const char* slurm = std::getenv("SLURM_CPUS_PER_TASK")) {
    const int value = std::atoi(slurm);
    if (value > 0)
      return {std::min(value, usable),
              "SLURM_CPUS_PER_TASK " + std::to_string(value) + ", capped by " + usable_why};
  }
  const int ranks = std::max(1, ranks_on_node);
  return {std::max(1, usable / ranks),
          usable_why + ", shared by " + std::to_string(ranks) + " rank(s) on this node"};
}

int default_loader_workers(int rank_threads) { return rank_threads >= 4 ? 2 : 1; }

}  // namespace ctmq::dist
