// plan.tsv (docs/run-directory.md, version 1): the text form of a StagePlan
// that ctmq-plan prints and the shell runners read.
#pragma once

#include <string>

#include "ctmq/plan/stage_plan.h"

namespace ctmq::plan {

constexpr int kPlanTsvVersion = 1;

// The last line is "# crc32 HEX": the CRC-32 (zlib) of every byte above it.
std::string format_plan_tsv(const StagePlan& plan);

// Parses plan.tsv text; `source` names the file in errors. Refuses a missing
// or failing checksum line (first), other versions, malformed lines, and
// duplicate or forward init references.
StagePlan parse_plan_tsv(const std::string& text, const std::string& source);

// The stage facts the shell runners use (ctmq-plan --stage-table, read by
// ctmq_read_plan in pipeline/common.sh): one line per stage, in plan order,
// "name<TAB>w_bits<TAB>a_bits<TAB>epochs<TAB>init<TAB>role<TAB>cycle", no header.
std::string format_stage_table(const StagePlan& plan);

// Records `plan` in RUN/plan.tsv: writes it atomically when absent; when
// present, checks that it describes the same plan and throws ctmq::Error
// naming the first differing stage otherwise (the run directory was made with
// another plan: use a new run directory or restore the old [plan] options).
void write_or_check_plan(const std::string& run_dir, const StagePlan& plan);

}  // namespace ctmq::plan
