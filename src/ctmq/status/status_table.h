// ctmq-status's output: the stages of a run as an aligned table for people or
// as TSV for scripts (docs/pipeline.md, "Watching a run").
#pragma once

#include <string>
#include <vector>

#include "ctmq/status/run_status.h"

namespace ctmq::status {

// One row per stage: stage, bits (W4A4, fp), epochs, state (state_text), step
// "s/S" ("s/?" while S is unknown), img/s (the newest training record's), ETA
// (running stages), top-1 (%, from eval.json), job ("TRAIN/EVAL" Slurm ids);
// "-" where there is nothing. Each of `notes` follows as a "note: ..." line.
std::string format_status_table(const std::vector<StageStatus>& statuses,
                                const std::vector<std::string>& notes);

// A header line, then one line per stage with the columns stage, w_bits,
// a_bits, epochs, state (state_name), detail, step, total_steps,
// images_per_s, eta_s, top1, train_job, eval_job; an unknown value is an
// empty field. Notes are not part of it.
std::string format_status_tsv(const std::vector<StageStatus>& statuses);

}  // namespace ctmq::status
