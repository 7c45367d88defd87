// Where each rank runs and which GPU it computes on: the one home of the GPU
// choice of ctmq-train and ctmq-eval ([train] device = cuda, --device cuda).
//
// Every rank reports its host, its node-local rank (MPI's shared-memory
// split), CUDA_VISIBLE_DEVICES and the UUIDs of the GPUs it sees, in CUDA's
// order. The ranks that see the same list of GPUs (the same UUIDs in the same
// order: necessarily ranks of one node) share it out in rank order: the i-th
// of them takes the i-th GPU of the list. That is right under every binding
// Slurm and mpirun make:
//   - none (every rank of a node sees every GPU): ranks take 0, 1, 2, ...;
//   - one GPU per task (--gpus-per-task=1, --gpu-bind=single:1, map_gpu):
//     each rank sees one GPU of its own and takes it;
//   - several GPUs per task (--gpu-bind=closest gives the ranks of a socket
//     that socket's GPUs): the ranks that share the list split it.
// Two ranks that would compute on one GPU (more ranks than GPUs in a list, or
// lists that overlap) are an error naming both ranks, their hosts and the GPU.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "ctmq/dist/communicator.h"

namespace ctmq::dist {

// What one rank reports about where it runs.
struct RankPlace {
  std::string host;        // gethostname()
  std::string slurm_node;  // SLURMD_NODENAME; "" outside a Slurm step
  int local_rank = 0;      // among the ranks of its node
  int local_size = 1;
  std::string visible_devices;  // CUDA_VISIBLE_DEVICES; "" when unset
  bool visible_devices_set = false;
  std::vector<std::string> gpus;  // UUIDs ("GPU-8f3c..."), CUDA's order; empty without CUDA
};

// This rank's RankPlace (gpus filled only when `with_gpus` and this build and
// node have CUDA).
RankPlace this_rank_place(const Communicator& comm, bool with_gpus);

// One line of text and back (how ranks exchange places).
std::string encode_place(const RankPlace& place);
RankPlace decode_place(const std::string& text);

// The GPU index, into the rank's own list, of every rank (-1 for a rank that
// sees no GPU). Throws ctmq::Error naming the ranks, hosts and GPU when two
// ranks would use the same GPU, unless `allow_shared` (then they share it).
std::vector<int> assign_gpus(const std::vector<RankPlace>& places, bool allow_shared = false);

// One rank's placement line: "rank 2 of 4 on host a (Slurm node n2), node
// rank 0 of 2, device cuda:1 (GPU-8f3c...), CUDA_VISIBLE_DEVICES=2,3",
// followed by any NCCL_* variables set in this process.
std::string describe_placement(int rank, int size, const RankPlace& place,
                               const std::string& device, const std::string& gpu_uuid);

}  // namespace ctmq::dist
