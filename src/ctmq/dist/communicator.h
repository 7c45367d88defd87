// The distributed context seen by the rest of ctmq: ranks, collectives on
// tensors, and a clean way for one failing rank to stop all of them.
//
// MPI stays behind this header (style rule 7). A Communicator with one rank
// needs no launcher: the executables run unchanged without mpirun.
//
// Thread safety: call from the thread that created the MpiContext only.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace ctmq::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Rank on this node (from the launcher's environment), to pick a GPU.
  virtual int local_rank() const = 0;

  // In-place sum over ranks. REQUIRES: contiguous tensors, same shapes and
  // dtypes (float32/float64/int64) on every rank, in the same order.
  virtual void allreduce_sum(std::vector<torch::Tensor>& tensors) = 0;
  // In-place copy of `root`'s tensors to every rank.
  virtual void broadcast(std::vector<torch::Tensor>& tensors, int root) = 0;
  // True on every rank if `flag` is true on any rank (used to agree on stopping).
  virtual bool any(bool flag) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job with `message` on stderr; never returns.
  [[noreturn]] virtual void abort(const std::string& message, int exit_code) = 0;
};

}  // namespace ctmq::dist
