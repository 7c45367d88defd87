#include "ctmq/plan/run_config.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace ctmq::plan {
namespace {

using ctmq::testing::error_of;

const char* kMessy =
    "# a chain\n"
    "[train]\n"
    "  seed=1   # the first\n"
    "batch = 64\n"
    "\n"
    "[plan] ; cycles below\n"
    "cycles = 2\n"
    "[data]\n"
    "train-manifest = /d/train/manifest.json\n"
    "[eval]\n";

TEST(RunConfigTest, CanonicalFormOrdersSectionsAndKeysAndDropsComments) {
  RunConfig c = parse_run_config(kMessy, "run.ini");
  EXPECT_EQ(format_run_config(c, "/x/run.ini", {"train.seed=2"}),
            "# ctmq resolved configuration (ctmq-plan --resolve-config): comments and key order\n"
            "# of the source are not kept. The stages read this file, not the source.\n"
            "# source: /x/run.ini\n"
            "# override: --set train.seed=2\n"
            "\n[plan]\ncycles = 2\n"
            "\n[train]\nbatch = 64\nseed = 1\n"
            "\n[data]\ntrain-manifest = /d/train/manifest.json\n");
}

TEST(RunConfigTest, CanonicalFormReadsBackToTheSameValues) {
  RunConfig c = parse_run_config(kMessy, "run.ini");
  apply_overrides(c, {parse_override("model.arch=resnet20"), parse_override("train.seed = 7")});
  RunConfig back = parse_run_config(format_run_config(c, "run.ini", {"a", "b"}), "resolved");
  EXPECT_EQ(back.sections, c.sections);
  EXPECT_EQ(back.sections.at("train").at("seed"), "7");
  EXPECT_EQ(back.sections.at("model").at("arch"), "resnet20");
  EXPECT_EQ(first_difference(back, c, "a", "b"), "");
}

TEST(RunConfigTest, CommentsAndOrderAreNoDifferenceButValuesAre) {
  const RunConfig a = parse_run_config(kMessy, "a.ini");
  const RunConfig reordered = parse_run_config(
      "[data]\ntrain-manifest=/d/train/manifest.json\n[plan]\ncycles=2 ; two\n"
      "[train]\nbatch=64\nseed=1\n",
      "b.ini");
  EXPECT_EQ(first_difference(a, reordered, "a.ini", "b.ini"), "");
  RunConfig changed = a;
  apply_overrides(changed, {parse_override("train.seed=2")});
  EXPECT_EQ(first_difference(changed, a, "new", "RUN/config.ini"),
            "[train] seed: 2 in new, 1 in RUN/config.ini");
  RunConfig added = a;
  apply_overrides(added, {parse_override("eval.test-limit=100")});
  EXPECT_EQ(first_difference(a, added, "A", "B"), "[eval] test-limit: not set in A, 100 in B");
}

TEST(RunConfigTest, ConfigValueIsTheValueOrNothing) {
  RunConfig c = parse_run_config(kMessy, "run.ini");
  EXPECT_EQ(config_value(c, "train", "seed"), "1");
  EXPECT_EQ(config_value(c, "data", "train-manifest"), "/d/train/manifest.json");
  EXPECT_EQ(config_value(c, "train", "epochs"), std::nullopt);
  EXPECT_EQ(config_value(c, "eval", "test-limit"), std::nullopt);  // an empty section
  EXPECT_EQ(config_value(c, "slurm", "data-prep"), std::nullopt);
}

TEST(RunConfigTest, RefusesMalformedOverrides) {
  EXPECT_NE(error_of([] { parse_override("train.seed"); }).find("has no '='"), std::string::npos);
  EXPECT_NE(error_of([] { parse_override("seed=2"); }).find("names no section"), std::string::npos);
  EXPECT_NE(error_of([] { parse_override("trian.seed=2"); }).find("unknown section [trian]"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_override("train.=2"); }).find("is not a key"), std::string::npos);
  EXPECT_NE(error_of([] { parse_override("train.seed="); }).find("is empty"), std::string::npos);
  EXPECT_NE(error_of([] { parse_override("train.augment=crop#x"); }).find("holds '#'"),
            std::string::npos);
}

TEST(RunConfigTest, RefusesWhatTheExecutablesWouldMisread) {
  EXPECT_NE(error_of([] {
              parse_run_config("[traning]\nseed = 1\n", "r.ini");
            }).find("r.ini:1: unknown section [traning]"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_run_config("seed = 1\n[train]\n", "r.ini");
            }).find("r.ini:1: 'seed' comes before any [section]"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_run_config("[train]\nseed = 1\nseed = 2\n", "r.ini");
            }).find("r.ini:3: [train] seed is set a second time"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_run_config("[train]\nseed\n", "r.ini");
            }).find("r.ini:2: expected 'key = value'"),
            std::string::npos);
}

}  // namespace
}  // namespace ctmq::plan
