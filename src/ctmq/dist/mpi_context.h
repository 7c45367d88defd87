// MpiContext: the MPI implementation of Communicator (communicator.h).
//
// RAII: the constructor initialises MPI (MPI_Init_thread, asking for
// MPI_THREAD_SERIALIZED: synchronised BatchNorm's backward and the gradient
// hooks call MPI from autograd's threads, never two at once) unless someone
// already did, and throws ctmq::Error when the level granted is lower; the
// destructor finalises MPI if this object initialised it. Without a launcher Open MPI starts as a
// singleton, so the same executable runs on one rank with no mpirun.
//
// Collectives run on a private duplicate of MPI_COMM_WORLD with errors
// returned (not fatal); every MPI failure becomes a ctmq::Error naming the call.
// Tensors on a GPU go to MPI directly when this MPI is CUDA-aware (Open MPI
// built with CUDA: MPIX_Query_cuda_support), after the current stream has
// finished writing them; otherwise they are staged through host memory.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ctmq/dist/collective_watchdog.h"
#include "ctmq/dist/communicator.h"

namespace ctmq::dist {

class MpiContext : public Communicator {
 public:
  // argc/argv may be null.
  MpiContext(int* argc = nullptr, char*** argv = nullptr);
  ~MpiContext() override;
  MpiContext(const MpiContext&) = delete;
  MpiContext& operator=(const MpiContext&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // The rank among the ranks of this node: a shared-memory split of the
  // world communicator (MPI_COMM_TYPE_SHARED). The launchers' variables
  // (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, MPI_LOCALRANKID) are only
  // checked against it, a warning naming any that disagrees.
  int local_rank() const override { return local_rank_; }
  // How many ranks this node runs (the same split).
  int local_size() const override { return local_size_; }

  void allreduce_sum(std::vector<torch::Tensor>& tensors) override;
  // MPI_Iallreduce (a device tensor staged through host memory is copied back
  // by wait()). Open MPI advances it inside MPI calls: test() is MPI_Test.
  std::unique_ptr<PendingReduction> start_allreduce_sum(torch::Tensor tensor) override;
  void broadcast(std::vector<torch::Tensor>& tensors, int root) override;
  bool any(bool flag) override;
  void barrier() override;
  // Prints `message` and calls MPI_Abort when size() > 1; with one rank it
  // exits with `exit_code` after finalising MPI.
  [[noreturn]] void abort(const std::string& message, int exit_code) override;
  // True when GPU tensors go to MPI without host staging.
  bool cuda_aware() const { return cuda_aware_; }
  // Ends this rank when a blocking collective (or the wait for a started
  // reduction) takes longer than `seconds` (dist/collective_watchdog.h);
  // <= 0 switches the watchdog off (the default). Ignored on one rank.
  void set_collective_timeout(double seconds);

 private:
  // The tensor itself (CPU, or GPU with CUDA-aware MPI) or a host copy.
  torch::Tensor buffer_for_mpi(const torch::Tensor& tensor) const;
  // The watchdog's guard over a blocking call, when there is a watchdog.
  std::optional<CollectiveWatchdog::Guard> guard(const char* what, int64_t bytes);
  struct State;
  std::unique_ptr<State> state_;
  int rank_ = 0;
  int size_ = 1;
  int local_rank_ = 0;
  int local_size_ = 1;
  bool cuda_aware_ = false;
  std::unique_ptr<CollectiveWatchdog> watchdog_;
};

}  // namespace ctmq::dist
