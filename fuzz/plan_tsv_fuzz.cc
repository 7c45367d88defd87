// Fuzzes the plan.tsv parser (plan/plan_tsv.cc), which the shell runners and
// ctmq-plan --run-dir read back. A plan that parses must print and parse
// back to the same text.
// Input: one flag byte, then the file. The last line is a CRC-32 of the rest,
// which would stop almost every mutation at the first check, so with bit 0 set
// the target appends that line itself ("# crc32 HEX" of the bytes given).
#include <string>

#include "ctmq/common/checksum.h"
#include "ctmq/plan/plan_tsv.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1)
    text += "# crc32 " + ctmq::crc32_hex(ctmq::crc32_of(text.data(), text.size())) + "\n";
  ctmq::fuzz::expect_errors_only([&] {
    const ctmq::plan::StagePlan plan = ctmq::plan::parse_plan_tsv(text, "plan.tsv");
    const std::string once = ctmq::plan::format_plan_tsv(plan);
    const ctmq::plan::StagePlan again = ctmq::plan::parse_plan_tsv(once, "plan.tsv");
    if (!(again == plan) || ctmq::plan::format_plan_tsv(again) != once) __builtin_trap();
  });
  return 0;
}
