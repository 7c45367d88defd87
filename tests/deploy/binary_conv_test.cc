// PackedBinaryConv against an oracle: torch::conv2d in double of the coded
// input (+-1 or {0, 1}) with the +-1 weights, then scale * dot + bias. Every
// kernel path, odd shapes, both codings, and the file order of the filter bits.
#include "ctmq/deploy/binary_conv.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "ctmq/common/error.h"
#include "test_support.h"

namespace ctmq::deploy {
namespace {

using ctmq::testing::error_of;

bool has_avx2() { return auto_kernel_path_name() == "avx2"; }

std::vector<KernelPath> paths() {
  std::vector<KernelPath> p{KernelPath::kPortable, KernelPath::kAuto};
  if (has_avx2()) p.push_back(KernelPath::kAvx2);
  return p;
}

const char* name(KernelPath p) {
  return p == KernelPath::kPortable ? "portable" : p == KernelPath::kAvx2 ? "avx2" : "auto";
}

// The oracle. input float [N, C, H, W], weight float [O, C, k, k].
torch::Tensor reference(const torch::Tensor& input, const torch::Tensor& weight,
                        const BinaryConvGeometry& g, InputCoding coding, const torch::Tensor& scale,
                        const torch::Tensor& bias) {
  const torch::Tensor a = coding == InputCoding::kSigned
                              ? torch::where(input < 0, -1.0, 1.0).to(torch::kFloat64)
                              : (input > 0.5).to(torch::kFloat64);
  const torch::Tensor w = torch::where(weight < 0, -1.0, 1.0).to(torch::kFloat64);
  const torch::Tensor dot = torch::conv2d(a, w, {}, g.stride, g.padding);
  return dot * scale.to(torch::kFloat64).view({1, -1, 1, 1}) +
         bias.to(torch::kFloat64).view({1, -1, 1, 1});
}

torch::Tensor run(const PackedBinaryConv& conv, const torch::Tensor& input, InputCoding coding,
                  const torch::Tensor& scale, const torch::Tensor& bias, KernelPath path) {
  const auto& g = conv.geometry();
  const int64_t n = input.size(0), h = input.size(2), w = input.size(3);
  torch::Tensor out = torch::full({n, g.out_channels, conv.output_size(h), conv.output_size(w)},
                                  std::numeric_limits<float>::quiet_NaN());
  const torch::Tensor x = input.contiguous();
  conv.forward(x.data_ptr<float>(), n, h, w, coding, scale.data_ptr<float>(),
               bias.data_ptr<float>(), out.data_ptr<float>(), path);
  return out;
}

// Random values with exact 0, -0.0 and 0.5 (the codings' edge cases) mixed in.
torch::Tensor edgy_input(std::vector<int64_t> shape) {
  torch::Tensor x = torch::randn(shape);
  const torch::Tensor pick = torch::randint(0, 8, shape);
  x = torch::where(pick == 0, torch::zeros_like(x), x);
  x = torch::where(pick == 1, torch::full_like(x, -0.0), x);
  x = torch::where(pick == 2, torch::full_like(x, 0.5), x);
  return x;
}

PackedBinaryConv packed(const torch::Tensor& weight, const BinaryConvGeometry& g) {
  const torch::Tensor w = weight.contiguous();
  return PackedBinaryConv::from_weights(w.data_ptr<float>(), g);
}

// Compares every path with the oracle: exact dots at scale 1, bias 0, and
// within 1e-5 relative at random scale and bias.
// "c16 k3 s2 p1 7x5": a sweep case, for failure messages.
std::string case_name(const BinaryConvGeometry& g, int64_t h, int64_t w) {
  return "c" + std::to_string(g.in_channels) + " k" + std::to_string(g.kernel) + " s" +
         std::to_string(g.stride) + " p" + std::to_string(g.padding) + " " + std::to_string(h) +
         "x" + std::to_string(w);
}

void expect_matches_oracle(const torch::Tensor& input, const torch::Tensor& weight,
                           const BinaryConvGeometry& g, const std::string& what) {
  const PackedBinaryConv conv = packed(weight, g);
  const torch::Tensor one = torch::ones({g.out_channels}), zero = torch::zeros({g.out_channels});
  const torch::Tensor scale = torch::rand({g.out_channels}) + 0.1;
  const torch::Tensor bias = torch::randn({g.out_channels});
  for (InputCoding coding : {InputCoding::kSigned, InputCoding::kUnsigned}) {
    const std::string where = what + (coding == InputCoding::kSigned ? " signed " : " unsigned ");
    const torch::Tensor dots = reference(input, weight, g, coding, one, zero).to(torch::kFloat32);
    const torch::Tensor expected = reference(input, weight, g, coding, scale, bias);
    for (KernelPath path : paths()) {
      const torch::Tensor got = run(conv, input, coding, one, zero, path);
      ASSERT_TRUE(torch::equal(got, dots))
          << where << name(path) << ": max |diff| " << (got - dots).abs().max().item<float>();
      const torch::Tensor affine = run(conv, input, coding, scale, bias, path).to(torch::kFloat64);
      const double err = ((affine - expected).abs() / (expected.abs() + 1)).max().item<double>();
      ASSERT_LT(err, 1e-5) << where << name(path);
    }
  }
}

TEST(BinaryConv, ExactDotsOverOddShapesStridesPaddingsAndPaths) {
  torch::manual_seed(11);
  for (int64_t channels : {1, 3, 63, 64, 65, 130}) {
    for (int64_t kernel : {1, 3}) {
      for (int64_t stride : {1, 2}) {
        for (int64_t padding : {0, 1}) {
          for (auto [h, w] : {std::pair<int64_t, int64_t>{5, 7}, {1, 1}}) {
            if (h + 2 * padding < kernel) continue;
            const BinaryConvGeometry g{channels, 5, kernel, stride, padding};
            const torch::Tensor x = edgy_input({2, channels, h, w});
            const torch::Tensor wt = torch::randn({5, channels, kernel, kernel});
            expect_matches_oracle(x, wt, g, case_name(g, h, w));
          }
        }
      }
    }
  }
}

// in_channels % 8 == 0 takes the AVX2 byte gather (taps as whole bytes from
// a zero-bordered image), the others the shifting gather; filter counts
// that are not multiples of the 4-filter tile, positions that are not
// multiples of the 8-position tile, and a 2-image batch.
TEST(BinaryConv, ExactDotsForByteAlignedChannelCounts) {
  torch::manual_seed(16);
  for (int64_t channels : {8, 16, 24, 32, 40, 48, 56, 72, 128}) {
    for (int64_t kernel : {1, 3}) {
      for (int64_t stride : {1, 2}) {
        for (int64_t padding : {0, 1}) {
          for (auto [h, w] : {std::pair<int64_t, int64_t>{7, 5}, {3, 3}, {9, 10}}) {
            const int64_t filters = channels == 128 ? 9 : 6;
            const BinaryConvGeometry g{channels, filters, kernel, stride, padding};
            const torch::Tensor x = edgy_input({2, channels, h, w});
            const torch::Tensor wt = torch::randn({filters, channels, kernel, kernel});
            expect_matches_oracle(x, wt, g, case_name(g, h, w));
          }
        }
      }
    }
  }
}

// Rows of 31 and 32 words (the AVX2 kernel sums its byte counters every 31
// words), at 16 filters (four full filter groups) and 28 x 28 inputs (more
// than one gather chunk).
TEST(BinaryConv, RowsAroundTheByteCounterBlock) {
  torch::manual_seed(17);
  for (int64_t channels : {216, 224, 248}) {  // K = 1944, 2016, 2232 bits
    const BinaryConvGeometry g{channels, 16, 3, 1, 1};
    expect_matches_oracle(edgy_input({1, channels, 13, 11}), torch::randn({16, channels, 3, 3}), g,
                          "block c" + std::to_string(channels));
  }
  const BinaryConvGeometry g{16, 16, 3, 1, 1};
  expect_matches_oracle(edgy_input({3, 16, 28, 28}), torch::randn({16, 16, 3, 3}), g,
                        "small-resnet 16 channels");
}

// The AVX2 byte path treats the positions of several images as one M
// dimension, so row tiles and 4-position vectors span images: small images
// (1, 6, 16, 49 positions), batches that leave partial tiles, both strides;
// 5 input channels keep the per-image shifting gather covered too.
TEST(BinaryConv, TilesSpanningImagesOfABatch) {
  torch::manual_seed(18);
  for (int64_t channels : {5, 8, 16, 64}) {
    for (int64_t batch : {1, 2, 3, 5, 17}) {
      for (auto [h, w] : {std::pair<int64_t, int64_t>{1, 1}, {2, 3}, {4, 4}, {7, 7}}) {
        for (int64_t stride : {1, 2}) {
          const BinaryConvGeometry g{channels, 6, 3, stride, 1};
          expect_matches_oracle(
              edgy_input({batch, channels, h, w}), torch::randn({6, channels, 3, 3}), g,
              "c" + std::to_string(channels) + " b" + std::to_string(batch) + " s" +
                  std::to_string(stride) + " " + std::to_string(h) + "x" + std::to_string(w));
        }
      }
    }
  }
}

// A batch larger than one pass of packed images (128 channels at 28 x 28
// take 14 KiB per padded image and nibble half, so a 256 KiB pass holds 9
// images): two passes, of 9 and 8 images.
TEST(BinaryConv, BatchSpanningSeveralPasses) {
  torch::manual_seed(19);
  const BinaryConvGeometry g{128, 5, 3, 1, 1};
  expect_matches_oracle(edgy_input({17, 128, 28, 28}), torch::randn({5, 128, 3, 3}), g,
                        "17 images of 128 channels");
}

TEST(BinaryConv, ResNetStemShapeKernel7Stride2Padding3) {
  torch::manual_seed(12);
  const BinaryConvGeometry g{3, 9, 7, 2, 3};
  expect_matches_oracle(edgy_input({2, 3, 19, 22}), torch::randn({9, 3, 7, 7}), g, "stem");
}

// K = 1000 * 9 bits is past the AVX2 kernel's 63-step byte-counter reduction,
// and 130 filters of that length span more than one filter block.
TEST(BinaryConv, LongFiltersAndManyFilters) {
  torch::manual_seed(13);
  const BinaryConvGeometry g{1000, 130, 3, 1, 1};
  expect_matches_oracle(edgy_input({1, 1000, 3, 4}), torch::randn({130, 1000, 3, 3}), g, "long");
}

// Real Fashion-MNIST images: the 28x28 input layer (unsigned coding of the
// pixel intensities, many exact zeros), and 64 normalised images stacked as
// channels for a hidden-layer shape (several gather chunks, 70 filters).
TEST(BinaryConv, FashionMnistImages) {
  torch::manual_seed(14);
  const auto raw = ctmq::testing::load_fashion_mnist_train(68);
  const torch::Tensor images = raw.images.to(torch::kFloat32) / 255;  // [68, 1, 28, 28]
  expect_matches_oracle(images.slice(0, 0, 4), torch::randn({16, 1, 3, 3}),
                        BinaryConvGeometry{1, 16, 3, 1, 1}, "fashion input layer");
  const torch::Tensor stacked = ((images.slice(0, 4, 68) - 0.2860) / 0.3530).view({1, 64, 28, 28});
  expect_matches_oracle(stacked, torch::randn({70, 64, 3, 3}), BinaryConvGeometry{64, 70, 3, 1, 1},
                        "fashion 64 channels");
  expect_matches_oracle(stacked, torch::randn({32, 64, 3, 3}), BinaryConvGeometry{64, 32, 3, 2, 1},
                        "fashion 64 channels stride 2");
}

// Bit j = (ky * kernel + kx) * in_channels + c of filter o is bit j % 64 of
// word o * words_per_filter() + j / 64; 1 means w < 0.
TEST(BinaryConv, FilterBitsFollowTheFileOrder) {
  const BinaryConvGeometry g{30, 2, 3, 1, 0};  // 270 bits: 5 words per filter
  torch::Tensor w = torch::ones({2, 30, 3, 3});
  w[1][7][2][1] = -0.5;  // j = (2 * 3 + 1) * 30 + 7 = 217
  w[0][0][0][0] = -0.0;  // -0.0 is not < 0: +1
  const PackedBinaryConv conv = packed(w, g);
  ASSERT_EQ(conv.words_per_filter(), 5);
  std::vector<uint64_t> expected(10, 0);
  expected[5 + 217 / 64] = uint64_t{1} << (217 % 64);
  EXPECT_EQ(conv.words(), expected);
}

TEST(BinaryConv, WordsRoundTripThroughTheWordConstructor) {
  torch::manual_seed(15);
  const BinaryConvGeometry g{65, 7, 3, 2, 1};
  const torch::Tensor w = torch::randn({7, 65, 3, 3});
  const PackedBinaryConv a = packed(w, g);
  const PackedBinaryConv b(g, a.words());
  EXPECT_EQ(b.words(), a.words());
  const torch::Tensor x = edgy_input({2, 65, 6, 5});
  const torch::Tensor scale = torch::rand({7}), bias = torch::randn({7});
  for (KernelPath path : paths()) {
    EXPECT_TRUE(torch::equal(run(a, x, InputCoding::kSigned, scale, bias, path),
                             run(b, x, InputCoding::kSigned, scale, bias, path)))
        << name(path);
  }
}

TEST(BinaryConv, WordConstructorRefusesAWrongCountAndASetPadBit) {
  const BinaryConvGeometry g{3, 2, 3, 1, 1};  // 27 bits: one word per filter
  EXPECT_NE(error_of([&] {
              PackedBinaryConv(g, std::vector<uint64_t>(3, 0));
            }).find("expected 2 filter words"),
            std::string::npos);
  std::vector<uint64_t> words{uint64_t{1} << 26, uint64_t{1} << 27};
  const std::string message = error_of([&] { PackedBinaryConv(g, words); });
  EXPECT_NE(message.find("filter 1 has a bit set past its 27 bits"), std::string::npos) << message;
  words[1] = 0;
  EXPECT_EQ(error_of([&] { PackedBinaryConv(g, words); }), "");
}

TEST(BinaryConv, RefusesBadGeometryAndOutputsSmallerThanOne) {
  EXPECT_NE(error_of([] {
              PackedBinaryConv({3, 2, 0, 1, 0}, {});
            }).find("positive"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              PackedBinaryConv({3, 2, 3, 0, 0}, {0, 0});
            }).find("positive"),
            std::string::npos);
  const PackedBinaryConv conv({2, 1, 3, 1, 0}, {0});
  std::vector<float> x(2 * 2 * 5), out(16), scale{1}, bias{0};
  const std::string message = error_of([&] {
    conv.forward(x.data(), 1, 2, 5, InputCoding::kSigned, scale.data(), bias.data(), out.data());
  });
  EXPECT_NE(message.find("output size would be < 1"), std::string::npos) << message;
}

TEST(BinaryConv, Avx2PathRefusedOnlyWithoutAvx2) {
  const PackedBinaryConv conv({1, 1, 1, 1, 0}, {0});
  float x = -1, out = 0, scale = 2, bias = 0.5;
  const std::string message = error_of([&] {
    conv.forward(&x, 1, 1, 1, InputCoding::kSigned, &scale, &bias, &out, KernelPath::kAvx2);
  });
  if (has_avx2()) {
    EXPECT_EQ(message, "");
    EXPECT_EQ(out, -1.5f);
  } else {
    EXPECT_NE(message.find("lacks AVX2"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace ctmq::deploy
