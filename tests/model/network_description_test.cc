#include "ctmq/model/network_description.h"

#include <gtest/gtest.h>

#include <map>

#include "test_support.h"

namespace ctmq::model {
namespace {

TEST(NetworkDescription, MetadataRoundTripsEveryArchitecture) {
  for (Architecture a :
       {Architecture::kResNet18, Architecture::kResNet20, Architecture::kSmallResNet}) {
    const NetworkDescription n{a, 7, 3, 24};
    std::map<std::string, c10::IValue> stored;
    for (const auto& [key, value] : network_metadata(n)) stored.emplace(key, value);
    ASSERT_EQ(stored.size(), 4u);
    EXPECT_EQ(stored.at("architecture").toStringRef(), architecture_name(a));
    const NetworkDescription back =
        network_from_metadata([&](const std::string& key) { return stored.at(key); });
    EXPECT_EQ(back.architecture, a);
    EXPECT_EQ(back.num_classes, 7);
    EXPECT_EQ(back.in_channels, 3);
    EXPECT_EQ(back.width, 24);
  }
}

TEST(NetworkDescription, WidthCountsExceptForResNet18) {
  const NetworkDescription r20{Architecture::kResNet20, 10, 3, 16};
  NetworkDescription wider = r20;
  wider.width = 32;
  EXPECT_TRUE(same_network(r20, r20));
  EXPECT_FALSE(same_network(r20, wider));
  const NetworkDescription r18{Architecture::kResNet18, 1000, 3, 64};
  NetworkDescription r18_other_width = r18;
  r18_other_width.width = 16;
  EXPECT_TRUE(same_network(r18, r18_other_width));
  NetworkDescription r18_gray = r18;
  r18_gray.in_channels = 1;
  EXPECT_FALSE(same_network(r18, r18_gray));
  EXPECT_EQ(to_string(r18), "resnet18, 1000 classes, 3 input channels");
}

TEST(NetworkDescription, AMismatchNamesTheFileBothNetworksAndTheRemedy) {
  const NetworkDescription found{Architecture::kResNet20, 10, 3, 16};
  const NetworkDescription expected = describe_network(ModelOptions{});
  EXPECT_EQ(ctmq::testing::error_of([&] { check_same_network(found, found, "checkpoint P"); }), "");
  const std::string e = ctmq::testing::error_of(
      [&] { check_same_network(found, expected, "checkpoint P", "delete D"); });
  EXPECT_NE(e.find("checkpoint P: architecture resnet20, 10 classes, 3 input channels, width 16; "
                   "this stage builds " +
                   to_string(expected) + "; delete D"),
            std::string::npos)
      << e;
}

}  // namespace
}  // namespace ctmq::model
