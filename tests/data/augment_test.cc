// Pad-and-random-crop + flip: the crops are what the formula says, the draws
// are deterministic per (seed, epoch, index) and spread over every offset.
#include "ctmq/data/augment.h"

#include <gtest/gtest.h>

#include <set>
#include <tuple>

#include "ctmq/common/error.h"
#include "test_support.h"

namespace ctmq::data {
namespace {

torch::Tensor real_images(int64_t n) {
  auto raw = ctmq::testing::load_fashion_mnist_train(n);
  return (raw.images.to(torch::kFloat32) / 255 - 0.2860) / 0.3530;
}

TEST(Augment, NoneReturnsTheBatchUnchanged) {
  const torch::Tensor images = real_images(4);
  AugmentOptions o;
  torch::Tensor out = augment_batch(images, {0, 1, 2, 3}, 0, torch::zeros({1}), o);
  EXPECT_TRUE(torch::equal(out, images));
}

TEST(Augment, EachSampleIsItsShiftedPossiblyFlippedImageWithBlackBorders) {
  const torch::Tensor images = real_images(16);
  const torch::Tensor black = torch::full({1}, -0.2860 / 0.3530);
  AugmentOptions o{Augment::kCropFlip, 3, 42};
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < 16; ++i) indices.push_back(1000 + 7 * i);
  const torch::Tensor out = augment_batch(images, indices, 5, black, o);
  ASSERT_EQ(out.sizes(), images.sizes());
  for (int64_t i = 0; i < 16; ++i) {
    const SampleTransform t = sample_transform(o, 5, indices[static_cast<size_t>(i)]);
    // Oracle, pixel by pixel: output (r, c) reads padded (r + dy, c + dx), i.e.
    // source (r + dy - pad, c' + dx - pad) with c' mirrored when flipped.
    for (int64_t r = 0; r < 28; ++r) {
      for (int64_t c = 0; c < 28; ++c) {
        const int64_t cc = t.flip ? 27 - c : c;
        const int64_t sr = r + t.dy - 3, sc = cc + t.dx - 3;
        const float expected = sr >= 0 && sr < 28 && sc >= 0 && sc < 28
                                   ? images[i][0][sr][sc].item<float>()
                                   : black.item<float>();
        ASSERT_EQ(out[i][0][r][c].item<float>(), expected) << i << " " << r << " " << c;
      }
    }
  }
}

TEST(Augment, DrawsAreDeterministicAndIndependentOfBatchPosition) {
  AugmentOptions o{Augment::kCropFlip, 2, 7};
  const torch::Tensor images = real_images(3);
  const torch::Tensor black = torch::zeros({1});
  torch::Tensor a = augment_batch(images, {10, 20, 30}, 1, black, o);
  torch::Tensor b = augment_batch(images.flip({0}), {30, 20, 10}, 1, black, o);
  EXPECT_TRUE(torch::equal(a, b.flip({0})));
  // Another epoch or seed draws other transforms for some of many samples.
  int differ_epoch = 0, differ_seed = 0;
  AugmentOptions other = o;
  other.seed = 8;
  for (int64_t i = 0; i < 200; ++i) {
    const SampleTransform t = sample_transform(o, 1, i), e = sample_transform(o, 2, i),
                          s = sample_transform(other, 1, i);
    differ_epoch += t.dx != e.dx || t.dy != e.dy || t.flip != e.flip;
    differ_seed += t.dx != s.dx || t.dy != s.dy || t.flip != s.flip;
  }
  EXPECT_GT(differ_epoch, 150);
  EXPECT_GT(differ_seed, 150);
}

TEST(Augment, OffsetsCoverTheRangeUniformlyAndHalfAreFlipped) {
  AugmentOptions o{Augment::kCropFlip, 2, 1};
  std::vector<int> dx(5, 0), dy(5, 0);
  int flips = 0;
  const int n = 20000;
  for (int64_t i = 0; i < n; ++i) {
    const SampleTransform t = sample_transform(o, 0, i);
    ASSERT_GE(t.dx, 0);
    ASSERT_LE(t.dx, 4);
    ASSERT_GE(t.dy, 0);
    ASSERT_LE(t.dy, 4);
    ++dx[static_cast<size_t>(t.dx)];
    ++dy[static_cast<size_t>(t.dy)];
    flips += t.flip;
  }
  // Each offset 1/5 of the draws: 4000 +- 5 sigma (sigma = sqrt(n p (1-p)) = 57).
  for (int k = 0; k < 5; ++k) {
    EXPECT_NEAR(dx[static_cast<size_t>(k)], n / 5, 285) << k;
    EXPECT_NEAR(dy[static_cast<size_t>(k)], n / 5, 285) << k;
  }
  EXPECT_NEAR(flips, n / 2, 360);  // 5 sigma = 5 * 71
}

TEST(Augment, ParsesItsNamesAndRejectsOthers) {
  EXPECT_EQ(parse_augment("none"), Augment::kNone);
  EXPECT_EQ(parse_augment("crop-flip"), Augment::kCropFlip);
  EXPECT_EQ(augment_name(Augment::kCropFlip), "crop-flip");
  EXPECT_THROW(parse_augment("random-crop"), Error);
}

// random_resized_crop: torchvision's get_params bounds over many draws,
// determinism per (seed, epoch, index), and the fallback.
TEST(RandomResizedCrop, BoxesStayInTorchvisionsBoundsAndFlipHalfTheTime) {
  const AugmentOptions o{Augment::kRandomResizedCrop, 0, 11};
  const int64_t h = 200, w = 300;
  int flips = 0;
  double area_sum = 0;
  constexpr int kDraws = 4000;
  for (int i = 0; i < kDraws; ++i) {
    const CropBox b = random_resized_crop(o, 3, i, h, w);
    ASSERT_GE(b.top, 0);
    ASSERT_GE(b.left, 0);
    ASSERT_LE(b.top + b.height, h);
    ASSERT_LE(b.left + b.width, w);
    const double area = static_cast<double>(b.height * b.width) / (h * w);
    const double ratio = static_cast<double>(b.width) / b.height;
    // Rounding w and h to integers moves area and ratio by at most ~1 px.
    EXPECT_GE(area, kCropScaleMin * 0.95);
    EXPECT_LE(area, 1.0);
    EXPECT_GE(ratio, kCropRatioMin * 0.95);
    EXPECT_LE(ratio, kCropRatioMax / 0.95);
    area_sum += area;
    flips += b.flip;
  }
  // Flip p = 1/2: 4000 draws, sd 0.008; +-0.04 is 5 sd.
  EXPECT_NEAR(static_cast<double>(flips) / kDraws, 0.5, 0.04);
  // Mean area fraction: torchvision's own RandomResizedCrop.get_params on a
  // 300x200 image (Debian's python3-torchvision, 3 runs of 4000 draws) gave
  // 0.389, 0.392, 0.393 (sd of a 4000-draw mean ~0.004); the unconditioned
  // scale mean 0.54 would mean a wrong rejection rule.
  EXPECT_NEAR(area_sum / kDraws, 0.391, 0.015);
}

TEST(RandomResizedCrop, SameSeedEpochAndIndexGiveTheSameBoxOtherEpochsAnother) {
  const AugmentOptions o{Augment::kRandomResizedCrop, 0, 5};
  int same_across_epochs = 0;
  for (int64_t index = 0; index < 50; ++index) {
    const CropBox a = random_resized_crop(o, 1, index, 375, 500);
    const CropBox b = random_resized_crop(o, 1, index, 375, 500);
    EXPECT_EQ(std::tie(a.top, a.left, a.height, a.width, a.flip),
              std::tie(b.top, b.left, b.height, b.width, b.flip));
    const CropBox c = random_resized_crop(o, 2, index, 375, 500);
    same_across_epochs +=
        std::tie(a.top, a.left, a.height, a.width) == std::tie(c.top, c.left, c.height, c.width);
  }
  EXPECT_EQ(same_across_epochs, 0);
}

TEST(RandomResizedCrop, ImpossibleAspectFallsBackToTheCentredClampedCrop) {
  // 10 x 1000: no box of area >= 8% fits in 10 rows, so every draw falls
  // back: height 10, width round(10 * 4/3) = 13, centred.
  const AugmentOptions o{Augment::kRandomResizedCrop, 0, 1};
  for (int64_t index = 0; index < 20; ++index) {
    const CropBox b = random_resized_crop(o, 0, index, 10, 1000);
    EXPECT_EQ(b.height, 10);
    EXPECT_EQ(b.width, 13);
    EXPECT_EQ(b.top, 0);
    EXPECT_EQ(b.left, (1000 - 13) / 2);
  }
}

}  // namespace
}  // namespace ctmq::data
