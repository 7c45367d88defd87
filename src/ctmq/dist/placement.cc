#include "ctmq/dist/placement.h"

#include <cstdlib>
#include <map>
#include <sstream>

#include "ctmq/common/error.h"
#include "ctmq/common/host_name.h"

#if defined(CTMQ_WITH_CUDA)
#include <ATen/cuda/CUDAContext.h>
#endif

extern char** environ;

namespace ctmq::dist {
namespace {

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// nvidia-smi's form of a GPU's UUID: GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
[[maybe_unused]] std::string uuid_text(const unsigned char* bytes) {
  static const char* hex = "0123456789abcdef";
  std::string text = "GPU-";
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
    text += hex[bytes[i] >> 4];
    text += hex[bytes[i] & 15];
  }
  return text;
}

std::vector<std::string> visible_gpu_uuids() {
  std::vector<std::string> uuids;
#if defined(CTMQ_WITH_CUDA)
  if (!torch::cuda::is_available()) return uuids;
  const int count = static_cast<int>(torch::cuda::device_count());
  for (int i = 0; i < count; ++i) {
    const cudaDeviceProp* props = at::cuda::getDeviceProperties(i);
    uuids.push_back(uuid_text(reinterpret_cast<const unsigned char*>(props->uuid.bytes)));
  }
#endif
  return uuids;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator)) parts.push_back(part);
  if (!text.empty() && text.back() == separator) parts.emplace_back();
  return parts;
}

std::string where(int rank, const RankPlace& p) {
  std::ostringstream s;
  s << "rank " << rank << " (host " << p.host;
  if (!p.slurm_node.empty()) s << ", Slurm node " << p.slurm_node;
  s << ", CUDA_VISIBLE_DEVICES=" << (p.visible_devices_set ? p.visible_devices : "(unset)") << ")";
  return s.str();
}

}  // namespace

RankPlace this_rank_place(const Communicator& comm, bool with_gpus) {
  RankPlace p;
  p.host = host_name();
  p.slurm_node = env_or_empty("SLURMD_NODENAME");
  p.local_rank = comm.local_rank();
  p.local_size = comm.local_size();
  p.visible_devices_set = std::getenv("CUDA_VISIBLE_DEVICES") != nullptr;
  p.visible_devices = env_or_empty("CUDA_VISIBLE_DEVICES");
  if (with_gpus) p.gpus = visible_gpu_uuids();
  return p;
}

std::string encode_place(const RankPlace& p) {
  std::string gpus;
  for (size_t i = 0; i < p.gpus.size(); ++i) gpus += (i ? "," : "") + p.gpus[i];
  std::ostringstream s;  // tab-separated: none of the fields holds a tab
  s << p.host << '\t' << p.slurm_node << '\t' << p.local_rank << '\t' << p.local_size << '\t'
    << (p.visible_devices_set ? 1 : 0) << '\t' << p.visible_devices << '\t' << gpus;
  return s.str();
}

RankPlace decode_place(const std::string& text) {
  const std::vector<std::string> f = split(text, '\t');
  CTMQ_ASSERT(f.size() == 7);
  RankPlace p;
  p.host = f[0];
  p.slurm_node = f[1];
  p.local_rank = std::stoi(f[2]);
  p.local_size = std::stoi(f[3]);
  p.visible_devices_set = f[4] == "1";
  p.visible_devices = f[5];
  if (!f[6].empty()) p.gpus = split(f[6], ',');
  return p;
}

std::vector<int> assign_gpus(const std::vector<RankPlace>& places, bool allow_shared) {
  std::vector<int> index(places.size(), -1);
  std::map<std::vector<std::string>, int> taken;  // ranks so far per list of GPUs
  std::map<std::string, int> user;                // GPU UUID -> first rank on it
  for (size_t r = 0; r < places.size(); ++r) {
    const auto& gpus = places[r].gpus;
    if (gpus.empty()) continue;
    const int n = static_cast<int>(gpus.size());
    const int k = taken[gpus]++;
    index[r] = k % n;
    const std::string& uuid = gpus[index[r]];
    const auto [first, fresh] = user.emplace(uuid, static_cast<int>(r));
    if (fresh || allow_shared) continue;
    const int other = first->second;
    CTMQ_FAIL("two ranks would compute on one GPU: "
              << where(other, places[other]) << " and " << where(static_cast<int>(r), places[r])
              << " both get GPU " << uuid << " ("
              << (k >= n ? std::to_string(k + 1) + " ranks share a list of " + std::to_string(n) +
                               " GPU(s)"
                         : std::string("their GPU lists overlap"))
              << "). Give each rank its own GPU: as many ranks per node as GPUs "
                 "(site file TASKS_PER_NODE = GPUS_PER_NODE), or --gpus-per-task=1 / "
                 "--gpu-bind=single:1 in SRUN_OPTIONS (docs/slurm.md, \"Several GPUs\")");
  }
  return index;
}

std::string describe_placement(int rank, int size, const RankPlace& p, const std::string& device,
                               const std::string& gpu_uuid) {
  std::ostringstream s;
  s << "placement: rank " << rank << " of " << size << " on host " << p.host;
  if (!p.slurm_node.empty()) s << " (Slurm node " << p.slurm_node << ")";
  s << ", node rank " << p.local_rank << " of " << p.local_size << ", device " << device;
  if (!gpu_uuid.empty()) s << " (" << gpu_uuid << ")";
  s << ", CUDA_VISIBLE_DEVICES=" << (p.visible_devices_set ? p.visible_devices : "(unset)");
  for (char** e = environ; e && *e; ++e) {
    const std::string entry = *e;
    if (entry.rfind("NCCL_", 0) == 0) s << ", " << entry;
  }
  return s.str();
}

}  // namespace ctmq::dist
