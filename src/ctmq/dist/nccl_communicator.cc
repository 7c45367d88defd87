#include "ctmq/dist/nccl_communicator.h"

#include "ctmq/common/error.h"
#include "ctmq/dist/collective_watchdog.h"

#if defined(CTMQ_WITH_NCCL)
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <nccl.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <utility>
#include <vector>
#endif

namespace ctmq::dist {

#if defined(CTMQ_WITH_NCCL)

// Inside NcclCommunicator: a failure also marks the communicator failed, so
// that it is aborted (ncclCommAbort), never destroyed gracefully.
#define NCCL_CHECK(call)                                                                       \
  do {                                                                                         \
    ncclResult_t ctmq_nccl_rc_ = (call);                                                       \
    if (ctmq_nccl_rc_ != ncclSuccess) failed_ = true;                                          \
    CTMQ_CHECK(ctmq_nccl_rc_ == ncclSuccess,                                                   \
               "NCCL call " << #call << " failed: " << ncclGetErrorString(ctmq_nccl_rc_)       \
                            << "; check one GPU per rank (NCCL refuses two ranks on one GPU) " \
                               "and the network between nodes (NCCL_DEBUG=WARN tells more), "  \
                               "or set [train] collectives = mpi");                            \
  } while (0)

namespace {

ncclDataType_t nccl_type_of(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32:
      return ncclFloat32;
    case torch::kFloat64:
      return ncclFloat64;
    case torch::kInt64:
      return ncclInt64;
    case torch::kInt32:
      return ncclInt32;
    case torch::kUInt8:
      return ncclUint8;
    default:
      break;
  }
  CTMQ_FAIL("NCCL communicator: dtype " << t.scalar_type()
                                        << " is not supported (float32, float64, int64, int32, "
                                           "uint8)");
}

// A reduction on the side stream: done when its event has completed.
class NcclPendingReduction : public PendingReduction {
 public:
  NcclPendingReduction(std::shared_ptr<at::cuda::CUDAEvent> done, int device)
      : done_(std::move(done)), device_(device) {}
  // As the interface promises: one not waited for is waited for here.
  ~NcclPendingReduction() override {
    if (!waited_) wait();
  }
  bool test() override { return done_->query(); }
  // Orders the current stream after the reduction; the host does not wait.
  void wait() override {
    done_->block(at::cuda::getCurrentCUDAStream(device_));
    waited_ = true;
  }

 private:
  std::shared_ptr<at::cuda::CUDAEvent> done_;
  int device_;
  bool waited_ = false;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(Communicator& control, int device, double timeout_s)
      : control_(control),
        device_(device),
        side_(c10::cuda::getStreamFromPool(false, device)),
        watchdog_(std::make_unique<CollectiveWatchdog>(control.rank(), "NCCL", timeout_s)) {
    torch::Tensor id = torch::zeros({static_cast<int64_t>(sizeof(ncclUniqueId))}, torch::kUInt8);
    if (control.rank() == 0) {
      ncclUniqueId unique;
      NCCL_CHECK(ncclGetUniqueId(&unique));
      std::memcpy(id.data_ptr(), &unique, sizeof(unique));
    }
    std::vector<torch::Tensor> ids{id};
    control.broadcast(ids, 0);
    ncclUniqueId unique;
    std::memcpy(&unique, id.data_ptr(), sizeof(unique));
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_));
    {
      const auto watching = watchdog_->blocking("ncclCommInitRank");
      NCCL_CHECK(ncclCommInitRank(&comm_, control.size(), unique, control.rank()));
    }
    ncclComm_t comm = comm_;
    watchdog_->set_error_probe([comm]() -> std::string {
      ncclResult_t state = ncclSuccess;
      if (ncclCommGetAsyncError(comm, &state) != ncclSuccess || state == ncclSuccess ||
          state == ncclInProgress)
        return "";
      return std::string(ncclGetErrorString(state)) + " (" + ncclGetLastError(comm) + ")";
    });
    // A timeout or an asynchronous error stops the kernels before the rank ends.
    watchdog_->set_before_exit([comm] { ncclCommAbort(comm); });
  }
  // Aborted (never blocking on a dead peer) after an error, or while an
  // exception unwinds the stack; destroyed gracefully otherwise.
  ~NcclCommunicator() override {
    watchdog_.reset();
    if (!comm_) return;
    if (failed_ || std::uncaught_exceptions() > 0) {
      ncclCommAbort(comm_);
    } else {
      ncclCommDestroy(comm_);
    }
  }
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return control_.rank(); }
  int size() const override { return control_.size(); }
  int local_rank() const override { return control_.local_rank(); }
  int local_size() const override { return control_.local_size(); }

  void allreduce_sum(std::vector<torch::Tensor>& tensors) override {
    std::vector<torch::Tensor> host;
    std::vector<torch::Tensor> device;
    split(tensors, host, device);
    std::vector<ncclDataType_t> types;
    for (const auto& t : device) types.push_back(nccl_type_of(t));
    grouped(device, "ncclAllReduce", [&](size_t i, cudaStream_t stream) {
      NCCL_CHECK(ncclAllReduce(device[i].data_ptr(), device[i].data_ptr(),
                               static_cast<size_t>(device[i].numel()), types[i], ncclSum, comm_,
                               stream));
    });
    if (!host.empty()) control_.allreduce_sum(host);
  }

  std::unique_ptr<PendingReduction> start_allreduce_sum(torch::Tensor tensor) override {
    if (!tensor.is_cuda()) return control_.start_allreduce_sum(std::move(tensor));
    check_device(tensor);
    if (tensor.numel() == 0) return std::make_unique<FinishedReduction>();
    const ncclDataType_t type = nccl_type_of(tensor);
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_));
    at::cuda::CUDAEvent ready;
    ready.record(at::cuda::getCurrentCUDAStream(device_));
    ready.block(side_);
    // The tensor's memory is in use on the side stream until `done`.
    c10::cuda::CUDACachingAllocator::recordStream(tensor.storage().data_ptr(), side_);
    NCCL_CHECK(ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(),
                             static_cast<size_t>(tensor.numel()), type, ncclSum, comm_,
                             side_.stream()));
    auto done = std::make_shared<at::cuda::CUDAEvent>();
    done->record(side_);
    watchdog_->watch("ncclAllReduce of " + std::to_string(tensor.nbytes()) + " bytes (overlapped)",
                     [done] { return done->query(); });
    return std::make_unique<NcclPendingReduction>(std::move(done), device_);
  }
  bool starts_from_any_thread() const override { return true; }

  void broadcast(std::vector<torch::Tensor>& tensors, int root) override {
    std::vector<torch::Tensor> host;
    std::vector<torch::Tensor> device;
    split(tensors, host, device);
    grouped(device, "ncclBroadcast", [&](size_t i, cudaStream_t stream) {  // bytes: any dtype
      NCCL_CHECK(ncclBroadcast(device[i].data_ptr(), device[i].data_ptr(),
                               static_cast<size_t>(device[i].nbytes()), ncclUint8, root, comm_,
                               stream));
    });
    if (!host.empty()) control_.broadcast(host, root);
  }

  bool any(bool flag) override { return control_.any(flag); }
  void barrier() override { control_.barrier(); }
  [[noreturn]] void abort(const std::string& message, int exit_code) override {
    watchdog_.reset();                // it polls comm_
    if (comm_) ncclCommAbort(comm_);  // no NCCL kernel outlives the job's abort
    comm_ = nullptr;
    control_.abort(message, exit_code);
    std::abort();  // not reached: control_.abort never returns
  }

 private:
  void check_device(const torch::Tensor& t) const {
    CTMQ_ASSERT(t.is_contiguous());
    CTMQ_CHECK(t.device().index() == device_, "NCCL communicator of GPU "
                                                  << device_ << " got a tensor on " << t.device()
                                                  << "; each rank keeps its model on its own GPU");
  }
  // call(i, stream) for each of `device`, in one NCCL group on the current
  // stream, watched until the stream has run it.
  template <typename Call>
  void grouped(const std::vector<torch::Tensor>& device, const char* what, const Call& call) {
    if (device.empty()) return;
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_));
    const c10::cuda::CUDAStream current = at::cuda::getCurrentCUDAStream(device_);
    int64_t bytes = 0;
    for (const auto& t : device) bytes += static_cast<int64_t>(t.nbytes());
    NCCL_CHECK(ncclGroupStart());
    for (size_t i = 0; i < device.size(); ++i) call(i, current.stream());
    NCCL_CHECK(ncclGroupEnd());
    auto done = std::make_shared<at::cuda::CUDAEvent>();
    done->record(current);
    watchdog_->watch(std::string(what) + " of " + std::to_string(bytes) + " bytes",
                     [done] { return done->query(); });
  }
  // CPU tensors go to `control`, empty ones nowhere.
  void split(std::vector<torch::Tensor>& tensors, std::vector<torch::Tensor>& host,
             std::vector<torch::Tensor>& device) const {
    for (auto& t : tensors) {
      if (!t.is_cuda()) {
        host.push_back(t);
      } else if (t.numel() > 0) {
        check_device(t);
        device.push_back(t);
      }
    }
  }

  Communicator& control_;
  int device_;
  c10::cuda::CUDAStream side_;
  std::unique_ptr<CollectiveWatchdog> watchdog_;
  ncclComm_t comm_ = nullptr;
  bool failed_ = false;
};

}  // namespace

bool nccl_available() { return true; }

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& control, int device_index,
                                                     double timeout_s) {
  return std::make_unique<NcclCommunicator>(control, device_index, timeout_s);
}

#else  // no NCCL in this build

bool nccl_available() { return false; }

std::unique_ptr<Communicator> make_nccl_communicator(Communicator&, int, double) {
  CTMQ_FAIL(
      "this ctmq was built without NCCL: it needs a CUDA LibTorch and NCCL (configure with "
      "-DCTMQ_NCCL_ROOT=PREFIX holding include/nccl.h; docs/training.md, \"Several GPUs\"); "
      "[train] collectives = mpi uses MPI instead");
}

#endif

}  // namespace ctmq::dist
