#include "ctmq/data/augment.h"

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
  if (name == "none") return Augment::kNone;
  if (name == "crop-flip") return Augment::kCropFlip;
  CTMQ_FAIL("augmentation '" << name << "' is not known; use one of: none, crop-flip");
}

std::string augment_name(Augment augment) {
  return augment == Augment::kCropFlip ? "crop-flip" : "none";
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
