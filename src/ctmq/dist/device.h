// Which device a rank computes on: the one home of the device choice of
// ctmq-train and ctmq-eval ([train] device, ctmq-eval --device).
//
// One GPU per local rank (the Slurm and mpirun convention: ranks on a node
// take GPUs 0, 1, ... in local-rank order, wrapping when there are fewer GPUs).
#pragma once

#include <torch/torch.h>

#include <string>

#include "ctmq/common/enum_names.h"
#include "ctmq/dist/communicator.h"

namespace ctmq::dist {

enum class DeviceKind { kCpu, kCuda };
inline constexpr EnumTable<DeviceKind, 2> kDeviceKindNames{{
    {DeviceKind::kCpu, "cpu"},
    {DeviceKind::kCuda, "cuda"},
}};

// "cpu" | "cuda"; throws ctmq::Error naming `option` and the accepted values
// otherwise.
inline DeviceKind parse_device_kind(const std::string& name,
                                    const std::string& option = "--device") {
  return parse_enum(kDeviceKindNames, name, option);
}
inline std::string device_kind_name(DeviceKind kind) { return enum_name(kDeviceKindNames, kind); }

// The CPU, or the CUDA device local_rank % device count. Throws ctmq::Error
// (telling the user to use cpu) for kCuda when this LibTorch sees no CUDA
// device.
torch::Device rank_device(DeviceKind kind, const Communicator& comm);

}  // namespace ctmq::dist
