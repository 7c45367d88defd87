#include "ctmq/data/augment.h"

#include <cmath>

#include "ctmq/common/error.h"

namespace ctmq::data {
namespace {

// SplitMix64 (Steele, Lea, Flood 2014): one well-mixed 64-bit value per input.
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

Augment parse_augment(const std::string& name) {
  return parse_enum(kAugmentNames, name, "augmentation");
}
std::string augment_name(Augment augment) { return enum_name(kAugmentNames, augment); }

CropBox random_resized_crop(const AugmentOptions& options, int64_t epoch, int64_t index,
                            int64_t height, int64_t width) {
  CTMQ_ASSERT(height > 0 && width > 0);
  // A SplitMix64 stream; its start differs from sample_transform's bits.
  uint64_t state = splitmix64(
      splitmix64(splitmix64(options.seed ^ 0x5252435f43524f50ULL) ^ static_cast<uint64_t>(epoch)) ^
      static_cast<uint64_t>(index));
  auto uniform = [&state] {  // [0, 1), 53 bits
    state += 0x9e3779b97f4a7c15ULL;
    return static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;
  };
  auto below = [&uniform](int64_t n) {  // uniform integer in [0, n)
    return std::min(n - 1, static_cast<int64_t>(uniform() * static_cast<double>(n)));
  };
  const double area = static_cast<double>(height) * static_cast<double>(width);
  const double log_min = std::log(kCropRatioMin), log_max = std::log(kCropRatioMax);
  CropBox box;
  bool found = false;
  for (int attempt = 0; attempt < kCropAttempts && !found; ++attempt) {
    const double target = area * (kCropScaleMin + (kCropScaleMax - kCropScaleMin) * uniform());
    const double ratio = std::exp(log_min + (log_max - log_min) * uniform());
    // Python's round(): half to even.
    const auto w = static_cast<int64_t>(std::nearbyint(std::sqrt(target * ratio)));
    const auto h = static_cast<int64_t>(std::nearbyint(std::sqrt(target / ratio)));
    if (0 < w && w <= width && 0 < h && h <= height) {
      box.top = below(height - h + 1);
      box.left = below(width - w + 1);
      box.height = h;
      box.width = w;
      found = true;
    }
  }
  if (!found) {  // torchvision's fallback: the central crop within the ratio bounds
    const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
    box.width = width;
    box.height = height;
    if (in_ratio < kCropRatioMin) {
      box.height = static_cast<int64_t>(std::nearbyint(width / kCropRatioMin));
    } else if (in_ratio > kCropRatioMax) {
      box.width = static_cast<int64_t>(std::nearbyint(height * kCropRatioMax));
    }
    box.height = std::max<int64_t>(1, std::min(box.height, height));
    box.width = std::max<int64_t>(1, std::min(box.width, width));
    box.top = (height - box.height) / 2;
    box.left = (width - box.width) / 2;
  }
  box.flip = uniform() < 0.5;
  return box;
}

SampleTransform sample_transform(const AugmentOptions& options, int64_t epoch, int64_t index) {
  const uint64_t bits =
      splitmix64(splitmix64(splitmix64(options.seed) ^ static_cast<uint64_t>(epoch)) ^
                 static_cast<uint64_t>(index));
  const uint64_t span = static_cast<uint64_t>(2 * options.pad + 1);
  SampleTransform t;
  t.dy = static_cast<int64_t>((bits & 0xffffffffULL) % span);
  t.dx = static_cast<int64_t>(((bits >> 32) & 0x7fffffffULL) % span);
  t.flip = (bits >> 63) != 0;
  return t;
}

torch::Tensor augment_batch(const torch::Tensor& images, const std::vector<int64_t>& indices,
                            int64_t epoch, const torch::Tensor& fill,
                            const AugmentOptions& options) {
  if (options.kind == Augment::kNone) return images;
  CTMQ_CHECK(options.kind == Augment::kCropFlip,
             "--augment random-resized-crop crops the stored images while they are decoded; "
             "read the batch with ShardDataset::get_training_batch");
  CTMQ_CHECK(options.pad >= 0, "augment-pad is " << options.pad << "; it must be >= 0");
  CTMQ_ASSERT(images.dim() == 4 && images.size(0) == static_cast<int64_t>(indices.size()));
  CTMQ_ASSERT(fill.numel() == images.size(1));
  torch::NoGradGuard no_grad;
  const int64_t h = images.size(2), w = images.size(3), p = options.pad;
  // Padded canvas filled with black, the batch in its middle.
  torch::Tensor canvas = fill.to(images.options())
                             .view({1, -1, 1, 1})
                             .repeat({images.size(0), 1, h + 2 * p, w + 2 * p});
  canvas.narrow(2, p, h).narrow(3, p, w).copy_(images);
  torch::Tensor out = torch::empty_like(images);
  for (size_t i = 0; i < indices.size(); ++i) {
    const SampleTransform t = sample_transform(options, epoch, indices[i]);
    torch::Tensor crop = canvas[static_cast<int64_t>(i)].narrow(1, t.dy, h).narrow(2, t.dx, w);
    out[static_cast<int64_t>(i)].copy_(t.flip ? crop.flip({2}) : crop);
  }
  return out;
}

}  // namespace ctmq::data
