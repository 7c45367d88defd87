#include "ctmq/plan/plan_tsv.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/checksum.h"
#include "ctmq/common/error.h"
#include "test_support.h"

namespace ctmq::plan {
namespace {

using ctmq::testing::error_of;

TEST(PlanTsvTest, RoundTripsEveryShape) {
  for (Schedule schedule : {Schedule::kA, Schedule::kB}) {
    for (AccurateModel acc :
         {AccurateModel::kFullPrecision, AccurateModel::kKStart, AccurateModel::kKPlusOne}) {
      PlanOptions o;
      o.schedule = schedule;
      o.accurate = acc;
      o.pretrained = "weights:/tmp/w.pt";
      StagePlan plan = make_plan(o);
      StagePlan back = parse_plan_tsv(format_plan_tsv(plan), "mem");
      EXPECT_TRUE(back == plan) << format_plan_tsv(plan);
    }
  }
}

TEST(PlanTsvTest, FormatHasVersionHeaderAndTabSeparatedRows) {
  PlanOptions o;
  o.k_start = 2;
  o.cycles = 1;
  o.baselines = false;
  const std::string text = format_plan_tsv(make_plan(o));
  EXPECT_EQ(text,
            "# ctmq plan version 1 (docs/run-directory.md)\n"
            "index\tstage\tcycle\tstep\tw_bits\ta_bits\tepochs\tinit\trole\n"
            "0\tc0-fp\t0\t0\t32\t32\t10\tnone\tpretrain\n"
            "1\tc1-w2a2\t1\t1\t2\t2\t2\tc0-fp\tstep\n"
            "2\tc1-w1a1\t1\t2\t1\t1\t2\tc1-w2a2\tresult\n"
            "# crc32 " +
                crc32_hex(crc32_of(text.data(), text.rfind("# crc32 "))) + "\n");
}

// Issue [7/12] #1: a byte changed in plan.tsv on shared storage was trusted.
TEST(PlanTsvTest, StageTableHasTheShellsFieldsInPlanOrder) {
  PlanOptions o;
  o.k_start = 2;
  o.cycles = 1;
  o.baselines = false;
  EXPECT_EQ(format_stage_table(make_plan(o)),
            "c0-fp\t32\t32\t10\tnone\tpretrain\t0\n"
            "c1-w2a2\t2\t2\t2\tc0-fp\tstep\t1\n"
            "c1-w1a1\t1\t1\t2\tc1-w2a2\tresult\t1\n");
}

TEST(PlanTsvTest, AChangedByteAnywhereFailsTheChecksumByName) {
  PlanOptions o;
  o.k_start = 2;
  const std::string text = format_plan_tsv(make_plan(o));
  for (size_t at = 0; at < text.size(); at += 7) {
    std::string damaged = text;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x04);
    const std::string error = error_of([&] { parse_plan_tsv(damaged, "RUN/plan.tsv"); });
    EXPECT_NE(error.find("RUN/plan.tsv"), std::string::npos) << "byte " << at << ": " << error;
  }
  EXPECT_NE(error_of([&] {
              parse_plan_tsv(text.substr(0, text.rfind("# crc32")), "p.tsv");
            }).find("no checksum line"),
            std::string::npos);
}

// `body` with the checksum line that format_plan_tsv writes.
std::string with_checksum(const std::string& body) {
  return body + "# crc32 " + crc32_hex(crc32_of(body.data(), body.size())) + "\n";
}

TEST(PlanTsvTest, RejectsNewerVersionsAndMalformedLines) {
  const std::string header = "index\tstage\tcycle\tstep\tw_bits\ta_bits\tepochs\tinit\trole\n";
  EXPECT_NE(error_of([&] {
              parse_plan_tsv(with_checksum("# ctmq plan version 2\n" + header), "p.tsv");
            }).find("version 2"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_plan_tsv(with_checksum("hello\n"), "p.tsv"); }).find("p.tsv"),
            std::string::npos);
  const std::string v1 = "# ctmq plan version 1\n" + header;
  EXPECT_NE(error_of([&] {
              parse_plan_tsv(with_checksum(v1 + "0\tc0-fp\t0\t0\t32\t32\tten\tnone\tpretrain\n"),
                             "p.tsv");
            }).find("p.tsv:3: column epochs"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_plan_tsv(with_checksum(v1 + "0\tc0-fp\t0\t0\t32\t32\t1\tc9-w1a1\tpretrain\n"),
                             "p.tsv");
            }).find("not an earlier stage"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_plan_tsv(with_checksum(v1 + "0\tc0-fp\t0\t0\t32\t32\t1\n"), "p.tsv");
            }).find("expected 9"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_plan_tsv(with_checksum(v1), "p.tsv"); }).find("no stages"),
            std::string::npos);
}

TEST(PlanTsvTest, WriteOrCheckAcceptsTheSamePlanAndRefusesAnother) {
  testing::TempDir dir;
  PlanOptions o;
  o.cycles = 2;
  StagePlan plan = make_plan(o);
  write_or_check_plan(dir.path(), plan);
  const std::string path = dir.path() + "/plan.tsv";
  ASSERT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ(read_file(path), format_plan_tsv(plan));
  write_or_check_plan(dir.path(), plan);  // same plan: no error
  o.epochs_step = 3;
  std::string message = error_of([&] { write_or_check_plan(dir.path(), make_plan(o)); });
  EXPECT_NE(message.find("different plan"), std::string::npos) << message;
  EXPECT_NE(message.find("c1-w4a4"), std::string::npos) << message;
  EXPECT_EQ(read_file(path), format_plan_tsv(plan));  // never overwritten
}

}  // namespace
}  // namespace ctmq::plan
