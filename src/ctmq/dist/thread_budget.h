// How many compute threads one rank should use.
//
// Open MPI binds each rank to one core by default, so LibTorch would see one
// thread: ranks set their thread count explicitly from this budget.
#pragma once

#include "ctmq/dist/communicator.h"

namespace ctmq::dist {

// Ranks on this node: OMPI_COMM_WORLD_LOCAL_SIZE, else SLURM_NTASKS_PER_NODE,
// else every rank of `comm` (a single node).
int ranks_per_node(const Communicator& comm);

// Threads per rank: `requested` if > 0, else SLURM_CPUS_PER_TASK, else the
// machine's cores divided by `ranks_on_node` (at least 1).
int resolve_threads(int requested, int ranks_on_node);

}  // namespace ctmq::dist
