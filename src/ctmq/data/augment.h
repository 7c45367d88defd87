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

#include "ctmq/common/enum_names.h"

namespace ctmq::data {

enum class Augment {
  kNone,      // images as stored
  kCropFlip,  // zero-pad by `pad` px, random crop back to H x W, flip with p = 1/2
  // torchvision's RandomResizedCrop(scale=(0.08, 1), ratio=(3/4, 4/3)) on the
  // stored image, resized to H x W, then a flip with p = 1/2 (the ImageNet
  // recipe); applied while decoding, by ShardDataset::get_training_batch.
  kRandomResizedCrop,
};
inline constexpr EnumTable<Augment, 3> kAugmentNames{{
    {Augment::kNone, "none"},
    {Augment::kCropFlip, "crop-flip"},
    {Augment::kRandomResizedCrop, "random-resized-crop"},
}};
// "none" | "crop-flip" | "random-resized-crop"; throws ctmq::Error naming the
// accepted values.
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

// RandomResizedCrop's bounds (torchvision's defaults, used by its ImageNet
// reference and by the Bi-Real / ReActNet training scripts).
inline constexpr double kCropScaleMin = 0.08;  // of the image's area
inline constexpr double kCropScaleMax = 1.0;
inline constexpr double kCropRatioMin = 3.0 / 4.0;  // width / height
inline constexpr double kCropRatioMax = 4.0 / 3.0;
inline constexpr int kCropAttempts = 10;

// A crop box in a stored image of height x width, and the flip after it.
struct CropBox {
  int64_t top = 0;
  int64_t left = 0;
  int64_t height = 0;
  int64_t width = 0;
  bool flip = false;
};
// The random-resized-crop box of one sample: the algorithm of torchvision's
// RandomResizedCrop.get_params (up to kCropAttempts draws of a scale,
// uniform in [kCropScaleMin, kCropScaleMax], and a log-uniform ratio, with
// w = round(sqrt(area * ratio)), h = round(sqrt(area / ratio)); the first
// that fits gets a uniform position; else the centre-crop fallback clamped
// to the ratio bounds), with its uniform draws taken from a SplitMix64
// stream seeded by (options.seed, epoch, index) instead of torch's RNG.
// REQUIRES: height, width > 0.
CropBox random_resized_crop(const AugmentOptions& options, int64_t epoch, int64_t index,
                            int64_t height, int64_t width);

// images: float [N, C, H, W], normalised; `indices`: the N data set indices of
// the batch; `fill`: float [C], the normalised value of a black pixel (what
// the padding holds, as torchvision pads the raw image with 0). Returns a new
// tensor of the same shape (the input itself for Augment::kNone). Throws
// ctmq::Error for kRandomResizedCrop, which needs the stored images
// (ShardDataset::get_training_batch applies it).
torch::Tensor augment_batch(const torch::Tensor& images, const std::vector<int64_t>& indices,
                            int64_t epoch, const torch::Tensor& fill,
                            const AugmentOptions& options);

}  // namespace ctmq::data
