// Which device a rank computes on: the one home of the device choice of
// ctmq-train and ctmq-eval ([train] device, ctmq-eval --device). The GPU of
// each rank is chosen among the ranks that see the same GPUs
// (dist/placement.h), never from launcher variables.
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

// The CPU, or this rank's CUDA device (dist::assign_gpus over every rank's
// view). Collective: every rank calls it. With `log`, every rank logs its
// placement line (describe_placement). Throws ctmq::Error (telling the user
// to use cpu) for kCuda when this LibTorch sees no CUDA device, and when two
// ranks would share a GPU, unless CTMQ_ALLOW_SHARED_GPU=1 is set (tests that
// run several ranks on one GPU; NCCL then also needs a distinct NCCL_HOSTID
// per rank).
torch::Device rank_device(DeviceKind kind, Communicator& comm, bool log = true);

}  // namespace ctmq::dist
