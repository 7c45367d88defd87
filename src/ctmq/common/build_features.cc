#include "ctmq/common/build_features.h"

#include "ctmq/common/build_config.h"
#include "ctmq/common/error.h"

namespace ctmq {
namespace {

struct FeatureInfo {
  BuildFeature feature;
  const char* name;     // as --version lists it
  const char* option;   // the CMake option
  const char* package;  // what provides it
  bool present;
};

constexpr FeatureInfo kFeatures[] = {
    {BuildFeature::kCuda, "cuda", "CTMQ_CUDA",
     "a CUDA build of LibTorch (PyTorch from PyPI: bash pipeline/install-torch.sh)",
     CTMQ_BUILT_CUDA},
    {BuildFeature::kNccl, "nccl", "CTMQ_NCCL",
     "NCCL (nccl.h and libnccl.so.2: the CUDA toolkit, a site module, or the nvidia-nccl wheel)",
     CTMQ_BUILT_NCCL},
    {BuildFeature::kJpeg, "jpeg", "CTMQ_JPEG",
     "libjpeg-turbo's TurboJPEG (Debian: libturbojpeg0-dev; conda/spack: libjpeg-turbo)",
     CTMQ_BUILT_JPEG},
    {BuildFeature::kSwscale, "swscale", "CTMQ_SWSCALE",
     "FFmpeg's libswscale and libavutil (Debian: libswscale-dev; conda/spack: ffmpeg)",
     CTMQ_BUILT_SWSCALE},
    {BuildFeature::kTensorBoard, "tensorboard", "CTMQ_TENSORBOARD",
     "Protocol Buffers (Debian: libprotobuf-dev protobuf-compiler; conda/spack: protobuf)",
     CTMQ_BUILT_TENSORBOARD},
};

const FeatureInfo& info_of(BuildFeature feature) {
  for (const auto& info : kFeatures)
    if (info.feature == feature) return info;
  CTMQ_ASSERT(false);
  return kFeatures[0];
}

}  // namespace

bool has_build_feature(BuildFeature feature) { return info_of(feature).present; }

std::string build_feature_list() {
  std::string list;
  for (const auto& info : kFeatures) {
    if (!info.present) continue;
    if (!list.empty()) list += ' ';
    list += info.name;
  }
  return list.empty() ? "none" : list;
}

void throw_missing_feature(BuildFeature feature, const std::string& what, const std::string& hint) {
  const FeatureInfo& info = info_of(feature);
  CTMQ_FAIL(what << " needs " << info.name << ", which this build of ctmq lacks (configured with "
                 << info.option << "=OFF, or its package was not found): install " << info.package
                 << " and reconfigure with -D" << info.option << "=ON (docs/building.md)"
                 << (hint.empty() ? "" : "; ") << hint);
}

}  // namespace ctmq
