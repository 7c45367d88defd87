#include "ctmq/dist/collectives.h"

#include "ctmq/common/error.h"
#include "ctmq/dist/nccl_communicator.h"

namespace ctmq::dist {

std::unique_ptr<Communicator> device_communicator(Communicator& control, Collectives collectives,
                                                  DeviceKind device, double timeout_s) {
  switch (collectives) {
    case Collectives::kMpi:
      return nullptr;
    case Collectives::kAuto:
      if (device != DeviceKind::kCuda || control.size() == 1 || !nccl_available()) return nullptr;
      break;
    case Collectives::kNccl:
      CTMQ_CHECK(device == DeviceKind::kCuda,
                 "[train] collectives = nccl needs [train] device = cuda (NCCL reduces GPU "
                 "tensors); CPU ranks use mpi");
      break;
  }
  const torch::Device gpu = rank_device(device, control, /*log=*/false);
  return make_nccl_communicator(control, static_cast<int>(gpu.index()), timeout_s);
}

}  // namespace ctmq::dist
