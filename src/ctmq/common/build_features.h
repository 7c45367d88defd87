// What this build of ctmq was configured with (docs/building.md, "Configure
// options"): the parts a GPU image or a cluster may lack are optional at
// configure time, and using a missing one at run time is one clear error that
// names the configure option and the package to install.
#pragma once

#include <string>

namespace ctmq {

// One optional part of the build.
enum class BuildFeature {
  kCuda,         // CTMQ_CUDA: CUDA tensors and devices (a CUDA LibTorch)
  kNccl,         // CTMQ_NCCL: the NCCL communicator for GPU ranks
  kJpeg,         // CTMQ_JPEG: JPEG decoding and encoding (libjpeg-turbo's TurboJPEG)
  kSwscale,      // CTMQ_SWSCALE: image resizing (FFmpeg's libswscale)
  kTensorBoard,  // CTMQ_TENSORBOARD: TensorBoard event files (Protocol Buffers)
};

// True when this build has `feature`.
bool has_build_feature(BuildFeature feature);

// "cuda nccl jpeg swscale tensorboard", the features this build has, in that
// order ("none" when it has none); printed by every program's --version.
std::string build_feature_list();

// Throws ctmq::Error: "`what` needs FEATURE, which this build of ctmq lacks
// (configured with CTMQ_X=OFF, or PACKAGE was not found); install PACKAGE and
// reconfigure with -DCTMQ_X=ON (docs/building.md)", plus `hint` when given
// (for example the option that avoids the feature).
[[noreturn]] void throw_missing_feature(BuildFeature feature, const std::string& what,
                                        const std::string& hint = "");

}  // namespace ctmq
