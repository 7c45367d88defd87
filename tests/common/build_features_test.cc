#include "ctmq/common/build_features.h"

#include <gtest/gtest.h>

#include "ctmq/common/error.h"

namespace ctmq {
namespace {

TEST(BuildFeatures, MissingFeatureErrorNamesTheOptionThePackageAndTheUse) {
  try {
    throw_missing_feature(BuildFeature::kJpeg, "decoding the JPEG a/b.jpg", "or use PNG");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("decoding the JPEG a/b.jpg"), std::string::npos) << message;
    EXPECT_NE(message.find("CTMQ_JPEG"), std::string::npos) << message;
    EXPECT_NE(message.find("libturbojpeg0-dev"), std::string::npos) << message;
    EXPECT_NE(message.find("or use PNG"), std::string::npos) << message;
  }
  try {
    throw_missing_feature(BuildFeature::kTensorBoard, "writing events");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("CTMQ_TENSORBOARD"), std::string::npos) << message;
    EXPECT_NE(message.find("protobuf"), std::string::npos) << message;
  }
}

TEST(BuildFeatures, TheListNamesWhatThisBuildHas) {
  // The test suite is built only with JPEG, libswscale and TensorBoard on
  // (tests/CMakeLists.txt); CUDA and NCCL follow the LibTorch it links.
  const std::string list = build_feature_list();
  EXPECT_NE(list.find("jpeg"), std::string::npos) << list;
  EXPECT_NE(list.find("swscale"), std::string::npos) << list;
  EXPECT_NE(list.find("tensorboard"), std::string::npos) << list;
  EXPECT_TRUE(has_build_feature(BuildFeature::kJpeg));
  EXPECT_EQ(has_build_feature(BuildFeature::kNccl), list.find("nccl") != std::string::npos);
  EXPECT_EQ(has_build_feature(BuildFeature::kCuda), list.find("cuda") != std::string::npos);
  if (has_build_feature(BuildFeature::kNccl)) EXPECT_TRUE(has_build_feature(BuildFeature::kCuda));
}

}  // namespace
}  // namespace ctmq
