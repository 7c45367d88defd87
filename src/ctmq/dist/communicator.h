// The distributed context seen by the rest of ctmq: ranks, collectives on
// tensors, and a clean way for one failing rank to stop all of them.
//
// MPI stays behind this header (style rule 7). A Communicator with one rank
// needs no launcher: the executables run unchanged without mpirun.
//
// Thread safety: call from the thread that created the communicator only
// (start_allreduce_sum: see starts_from_any_thread()).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ctmq::dist {

// A reduction started by Communicator::start_allreduce_sum that may still be
// running. Destroying one that was not waited for waits for it.
class PendingReduction {
 public:
  virtual ~PendingReduction() = default;
  // Lets the communication advance; true once the result is in place. Cheap:
  // callers poll it between pieces of other work.
  virtual bool test() = 0;
  // Blocks until the result is in place (for a device tensor: until it is
  // ordered before later work on the current stream).
  virtual void wait() = 0;
};

// The PendingReduction of a reduction that already finished.
class FinishedReduction : public PendingReduction {
 public:
  bool test() override { return true; }
  void wait() override {}
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Rank among the ranks of this node, and how many there are (MPI's
  // shared-memory split, not the launcher's variables).
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;

  // In-place sum over ranks. REQUIRES: contiguous tensors, same shapes and
  // dtypes (float32/float64/int64) on every rank, in the same order.
  virtual void allreduce_sum(std::vector<torch::Tensor>& tensors) = 0;
  // Starts an in-place sum over ranks of one contiguous tensor and returns
  // without waiting for it (MPI_Iallreduce, an NCCL call on a side stream);
  // `tensor` must stay untouched until the result's wait(). Every rank starts
  // the same reductions in the same order, interleaved with the blocking
  // collectives in the same order. The default runs allreduce_sum at once.
  // Call from the thread that created the communicator unless
  // starts_from_any_thread().
  virtual std::unique_ptr<PendingReduction> start_allreduce_sum(torch::Tensor tensor) {
    std::vector<torch::Tensor> tensors{std::move(tensor)};
    allreduce_sum(tensors);
    return std::make_unique<FinishedReduction>();
  }
  // True when start_allreduce_sum may be called from any thread (autograd's
  // device threads run the gradient hooks of a GPU model).
  virtual bool starts_from_any_thread() const { return false; }
  // In-place copy of `root`'s tensors to every rank.
  virtual void broadcast(std::vector<torch::Tensor>& tensors, int root) = 0;
  // True on every rank if `flag` is true on any rank (used to agree on stopping).
  virtual bool any(bool flag) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job with `message` on stderr; never returns.
  [[noreturn]] virtual void abort(const std::string& message, int exit_code) = 0;
};

}  // namespace ctmq::dist
