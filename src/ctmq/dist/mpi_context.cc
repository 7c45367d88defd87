#include "ctmq/dist/mpi_context.h"

#include <mpi.h>
#if defined(OPEN_MPI) && OPEN_MPI
#include <mpi-ext.h>  // MPIX_CUDA_AWARE_SUPPORT, MPIX_Query_cuda_support
#endif
#include <c10/core/impl/VirtualGuardImpl.h>

#include <climits>
#include <cstdlib>
#include <iostream>
#include <utility>

#include "ctmq/common/error.h"
#include "ctmq/common/log.h"
#include "ctmq/dist/mpi_check.h"

namespace ctmq::dist {
namespace {

MPI_Datatype mpi_type_of(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32:
      return MPI_FLOAT;
    case torch::kFloat64:
      return MPI_DOUBLE;
    case torch::kInt64:
      return MPI_INT64_T;
    case torch::kInt32:
      return MPI_INT32_T;
    default:
      CTMQ_ASSERT(false && "allreduce_sum supports float32/float64/int64/int32 tensors");
  }
  return MPI_DATATYPE_NULL;
}

int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  if (!value || !*value) return fallback;
  char* end = nullptr;
  long parsed = std::strtol(value, &end, 10);
  return (end && *end == '\0' && parsed >= 0) ? static_cast<int>(parsed) : fallback;
}

// Runs `op(pointer, count)` over a host tensor in chunks MPI's int counts can
// address.
template <typename Op>
void for_each_chunk(torch::Tensor& host, Op op) {
  const int64_t element = host.element_size();
  char* base = static_cast<char*>(host.data_ptr());
  const int64_t total = host.numel();
  const int64_t chunk = INT_MAX / 8;
  for (int64_t begin = 0; begin < total; begin += chunk) {
    int count = static_cast<int>(std::min(chunk, total - begin));
    op(base + begin * element, count);
  }
}

// True when this MPI takes CUDA device pointers (Open MPI built with CUDA:
// the compile-time macro says the library can, the query says this run does).
bool query_cuda_aware() {
#if defined(MPIX_CUDA_AWARE_SUPPORT)
  return MPIX_Query_cuda_support() == 1;
#else
  return false;
#endif
}

const char* thread_level_name(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE:
      return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED:
      return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED:
      return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE:
      return "MPI_THREAD_MULTIPLE";
    default:
      return "unknown";
  }
}

}  // namespace

struct MpiContext::State {
  MPI_Comm comm = MPI_COMM_NULL;
  bool initialised_here = false;
};

MpiContext::MpiContext(int* argc, char*** argv) : state_(std::make_unique<State>()) {
  int initialised = 0;
  MPI_CHECK(MPI_Initialized(&initialised));
  int provided = MPI_THREAD_SINGLE;
  if (!initialised) {
    MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided));
    state_->initialised_here = true;
  } else {
    MPI_CHECK(MPI_Query_thread(&provided));
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    if (state_->initialised_here) MPI_Finalize();
    CTMQ_FAIL(
        "this MPI library grants thread level "
        << thread_level_name(provided)
        << ", below MPI_THREAD_SERIALIZED, which ctmq needs: synchronised BatchNorm's backward "
           "and the gradient hooks call MPI from autograd's threads, one at a time; use an MPI "
           "built with thread support (Open MPI, MPICH and Intel MPI are by default)");
  }
  MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &state_->comm));
  MPI_CHECK(MPI_Comm_set_errhandler(state_->comm, MPI_ERRORS_RETURN));
  MPI_CHECK(MPI_Comm_rank(state_->comm, &rank_));
  MPI_CHECK(MPI_Comm_size(state_->comm, &size_));

  // The node: the ranks that share memory with this one, whatever the
  // launcher says (under mpirun inside a Slurm allocation SLURM_LOCALID is 0
  // on every rank). The launchers' own variables are only checked against it.
  MPI_Comm node = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split_type(state_->comm, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
  MPI_CHECK(MPI_Comm_rank(node, &local_rank_));
  MPI_CHECK(MPI_Comm_size(node, &local_size_));
  MPI_Comm_free(&node);
  if (size_ > 1) set_log_rank(rank_);
  for (const char* variable : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"}) {
    const int claimed = env_int(variable, -1);
    if (claimed >= 0 && claimed != local_rank_) {
      CTMQ_WARN(variable << "=" << claimed << " but this rank is rank " << local_rank_ << " of the "
                         << local_size_ << " ranks on its node (MPI_COMM_TYPE_SHARED); using "
                         << local_rank_);
    }
  }
  cuda_aware_ = query_cuda_aware();
}

torch::Tensor MpiContext::buffer_for_mpi(const torch::Tensor& tensor) const {
  if (tensor.is_cpu()) return tensor;
  if (cuda_aware_ && tensor.is_cuda()) {
    // MPI reads device memory directly: wait for the kernels that wrote it.
    c10::impl::VirtualGuardImpl(tensor.device().type()).getStream(tensor.device()).synchronize();
    return tensor;
  }
  return tensor.to(torch::kCPU);
}

void MpiContext::set_collective_timeout(double seconds) {
  watchdog_.reset();
  if (seconds > 0 && size_ > 1)
    watchdog_ = std::make_unique<CollectiveWatchdog>(rank_, "MPI", seconds);
}

std::optional<CollectiveWatchdog::Guard> MpiContext::guard(const char* what, int64_t bytes) {
  if (!watchdog_) return std::nullopt;
  return watchdog_->blocking(std::string(what) + " of " + std::to_string(bytes) + " bytes");
}

MpiContext::~MpiContext() {
  watchdog_.reset();
  if (state_->comm != MPI_COMM_NULL) MPI_Comm_free(&state_->comm);
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (state_->initialised_here && !finalised) MPI_Finalize();
}

void MpiContext::allreduce_sum(std::vector<torch::Tensor>& tensors) {
  for (auto& tensor : tensors) {
    CTMQ_ASSERT(tensor.is_contiguous());
    if (size_ == 1 || tensor.numel() == 0) continue;
    torch::Tensor host = buffer_for_mpi(tensor);
    MPI_Datatype type = mpi_type_of(host);
    const auto watching = guard("MPI_Allreduce", static_cast<int64_t>(host.nbytes()));
    for_each_chunk(host, [&](void* data, int count) {
      MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data, count, type, MPI_SUM, state_->comm));
    });
    if (!host.is_same(tensor)) tensor.copy_(host);
  }
}

namespace {

// One MPI_Iallreduce per chunk of a host tensor (MPI counts are int).
class MpiPendingReduction : public PendingReduction {
 public:
  MpiPendingReduction(torch::Tensor tensor, torch::Tensor host, MPI_Comm comm,
                      CollectiveWatchdog* watchdog)
      : tensor_(std::move(tensor)), host_(std::move(host)), watchdog_(watchdog) {
    const MPI_Datatype type = mpi_type_of(host_);
    for_each_chunk(host_, [&](void* data, int count) {
      requests_.push_back(MPI_REQUEST_NULL);
      MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, data, count, type, MPI_SUM, comm, &requests_.back()));
    });
  }
  ~MpiPendingReduction() override {
    if (!done_) {
      const auto watching = guard();
      MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
    }
  }
  bool test() override {
    if (done_) return true;
    int flag = 0;
    MPI_CHECK(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &flag,
                          MPI_STATUSES_IGNORE));
    if (flag) finish();
    return done_;
  }
  void wait() override {
    if (done_) return;
    const auto watching = guard();
    MPI_CHECK(
        MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE));
    finish();
  }

 private:
  std::optional<CollectiveWatchdog::Guard> guard() {
    if (!watchdog_) return std::nullopt;
    return watchdog_->blocking("MPI_Iallreduce of " + std::to_string(host_.nbytes()) + " bytes");
  }
  void finish() {
    done_ = true;
    if (!host_.is_same(tensor_)) tensor_.copy_(host_);
  }
  torch::Tensor tensor_;
  torch::Tensor host_;
  std::vector<MPI_Request> requests_;
  CollectiveWatchdog* watchdog_;
  bool done_ = false;
};

}  // namespace

std::unique_ptr<PendingReduction> MpiContext::start_allreduce_sum(torch::Tensor tensor) {
  CTMQ_ASSERT(tensor.is_contiguous());
  if (size_ == 1 || tensor.numel() == 0) return std::make_unique<FinishedReduction>();
  torch::Tensor host = buffer_for_mpi(tensor);
  return std::make_unique<MpiPendingReduction>(std::move(tensor), std::move(host), state_->comm,
                                               watchdog_.get());
}

void MpiContext::broadcast(std::vector<torch::Tensor>& tensors, int root) {
  CTMQ_ASSERT(root >= 0 && root < size_);
  for (auto& tensor : tensors) {
    CTMQ_ASSERT(tensor.is_contiguous());
    if (size_ == 1 || tensor.numel() == 0) continue;
    torch::Tensor host = buffer_for_mpi(tensor);
    // Bytes: any dtype travels unchanged.
    torch::Tensor bytes = host.view({-1}).view(torch::kUInt8);
    const auto watching = guard("MPI_Bcast", bytes.numel());
    for_each_chunk(bytes, [&](void* data, int count) {
      MPI_CHECK(MPI_Bcast(data, count, MPI_BYTE, root, state_->comm));
    });
    if (!host.is_same(tensor)) tensor.copy_(host);
  }
}

bool MpiContext::any(bool flag) {
  if (size_ == 1) return flag;
  int local = flag ? 1 : 0, global = 0;
  const auto watching = guard("MPI_Allreduce (any)", sizeof(int));
  MPI_CHECK(MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_LOR, state_->comm));
  return global != 0;
}

void MpiContext::barrier() {
  if (size_ == 1) return;
  const auto watching = guard("MPI_Barrier", 0);
  MPI_CHECK(MPI_Barrier(state_->comm));
}

void MpiContext::abort(const std::string& message, int exit_code) {
  std::cerr << message << std::endl;
  if (size_ > 1) MPI_Abort(MPI_COMM_WORLD, exit_code);
  if (state_->comm != MPI_COMM_NULL) MPI_Comm_free(&state_->comm);
  if (state_->initialised_here) MPI_Finalize();
  std::exit(exit_code);
}

}  // namespace ctmq::dist
