// Training-time augmentation of a batch of small images: pad-and-random-crop
// and horizontal flip (the CIFAR / 28x28 recipe of He et al. 2016 and of
// torchvision's references; Fashion-MNIST's own benchmark used flips and
// translations).
//
// Deterministic: the crop offset and the flip of a sample depend only on
// (seed, epoch, data set index), drawn with SplitMix64, never on a global RNG,
// the rank count or the position in the batch. A stage resumed from a
// checkpoint mid-epoch, or run on another number of ranks, sees the same
// augmented images.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ctmq::data {

enum class Augment {
  kNone,      // images as stored
  kCropFlip,  // zero-pad by `pad` px, random crop back to H x W, flip with p = 1/2
};
// "none" | "crop-flip"; throws ctmq::Error naming the accepted values.
Augment parse_augment(const std::string& name);
std::string augment_name(Augment augment);

struct AugmentOptions {
  Augment kind = Augment::kNone;
  int64_t pad = 2;    // px on every side (>= 0); 4 is the CIFAR recipe, 2 suits 28x28
  uint64_t seed = 0;  // the stage's data seed
};

// The crop offset (dy, dx in [0, 2 pad]) and the flip of one sample.
struct SampleTransform {
  int64_t dy = 0;
  int64_t dx = 0;
  bool flip = false;
};
SampleTransform sample_transform(const AugmentOptions& options, int64_t epoch, int64_t index);

// images: float [N, C, H, W], normalised; `indices`: the N data set indices of
// the batch; `fill`: float [C], the normalised value of a black pixel (what
// the padding holds, as torchvision pads the raw image with 0). Returns a new
// tensor of the same shape (the input itself for Augment::kNone).
torch::Tensor augment_batch(const torch::Tensor& images, const std::vector<int64_t>& indices,
                            int64_t epoch, const torch::Tensor& fill,
                            const AugmentOptions& options);

}  // namespace ctmq::data
