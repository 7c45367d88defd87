#include "ctmq/dist/thread_budget.h"

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace ctmq::dist {

int ranks_per_node(const Communicator& comm) {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE"}) {
    if (const char* value = std::getenv(name)) {
      int n = std::atoi(value);
      if (n > 0) return n;
    }
  }
  return comm.size();
}

int resolve_threads(int requested, int ranks_on_node) {
  if (requested > 0) return requested;
  if (const char* slurm = std::getenv("SLURM_CPUS_PER_TASK")) {
    int value = std::atoi(slurm);
    if (value > 0) return value;
  }
  int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, cores / std::max(1, ranks_on_node));
}

}  // namespace ctmq::dist
