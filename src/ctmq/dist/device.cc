#include "ctmq/dist/device.h"

#include <cstdlib>
#include <cstring>

#include "ctmq/common/error.h"
#include "ctmq/common/log.h"
#include "ctmq/dist/placement.h"
#include "ctmq/dist/text_collectives.h"

namespace ctmq::dist {

torch::Device rank_device(DeviceKind kind, Communicator& comm, bool log) {
  const bool cuda = kind == DeviceKind::kCuda;
  // Every rank takes part in the exchange before any of them may fail alone.
  const bool usable = !cuda || torch::cuda::is_available();
  const RankPlace own = this_rank_place(comm, cuda && usable);
  std::vector<RankPlace> places;
  for (const auto& text : all_gather_text(comm, encode_place(own)))
    places.push_back(decode_place(text));
  CTMQ_CHECK(usable,
             "device cuda: no CUDA device is visible (or LibTorch was built without "
             "CUDA); use cpu ([train] device = cpu, ctmq-eval --device cpu)");
  torch::Device device = torch::kCPU;
  std::string uuid;
  if (cuda) {
    const char* shared = std::getenv("CTMQ_ALLOW_SHARED_GPU");
    const std::vector<int> index =
        assign_gpus(places, shared != nullptr && std::strcmp(shared, "1") == 0);
    const int mine = index[comm.rank()];
    CTMQ_CHECK(mine >= 0, "device cuda: this rank sees no GPU");
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(mine));
    uuid = own.gpus[mine];
  }
  if (log) CTMQ_INFO(describe_placement(comm.rank(), comm.size(), own, device.str(), uuid));
  return device;
}

}  // namespace ctmq::dist
