// Keeping replicas of a model identical across ranks, and reducing metrics.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "ctmq/dist/communicator.h"

namespace ctmq::dist {

// Copies every parameter and buffer of `module` from rank `root` to all ranks
// (after initialisation and after loading weights). REQUIRES: the same
// architecture on every rank.
void broadcast_module_state(Communicator& comm, torch::nn::Module& module, int root = 0);

// Sums `values` over ranks (e.g. loss sums, correct counts, sample counts).
std::vector<double> allreduce_sum_values(Communicator& comm, std::vector<double> values);

}  // namespace ctmq::dist
