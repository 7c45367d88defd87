#include "ctmq/dist/device.h"

#include "ctmq/common/error.h"

namespace ctmq::dist {

torch::Device rank_device(DeviceKind kind, const Communicator& comm) {
  if (kind == DeviceKind::kCpu) return torch::kCPU;
  CTMQ_CHECK(torch::cuda::is_available(),
             "device cuda: no CUDA device is visible (or LibTorch was built without CUDA); "
             "use cpu ([train] device = cpu, ctmq-eval --device cpu)");
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(comm.local_rank() % count));
}

}  // namespace ctmq::dist
