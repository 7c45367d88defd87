// Which engine carries the collectives of ranks that train on GPUs
// ([train] collectives): NCCL, the field's engine for GPU tensors, or MPI
// (tensors staged through host memory). CPU ranks always use MPI.
#pragma once

#include <memory>

#include "ctmq/common/enum_names.h"
#include "ctmq/dist/communicator.h"
#include "ctmq/dist/device.h"

namespace ctmq::dist {

enum class Collectives { kAuto, kMpi, kNccl };
inline constexpr EnumTable<Collectives, 3> kCollectivesNames{{
    {Collectives::kAuto, "auto"},
    {Collectives::kMpi, "mpi"},
    {Collectives::kNccl, "nccl"},
}};

// The communicator to train over, built on `control` (the MPI ranks):
//   kMpi: none (null: train over `control`);
//   kNccl: NCCL on this rank's GPU (rank_device); throws ctmq::Error on CPU
//          ranks or in a build without NCCL;
//   kAuto: NCCL when the ranks train on GPUs, there are several and the build
//          has NCCL (nccl_available()); otherwise none.
// `timeout_s`: NCCL's collective timeout (make_nccl_communicator).
// Collective: every rank calls it with the same arguments.
std::unique_ptr<Communicator> device_communicator(Communicator& control, Collectives collectives,
                                                  DeviceKind device, double timeout_s = 0);

}  // namespace ctmq::dist
