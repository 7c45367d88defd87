// eval.json (docs/run-directory.md): the evaluation of one stage.
#pragma once

#include <string>
#include <vector>

#include "ctmq/eval/evaluator.h"
#include "ctmq/quant/bit_depths.h"

namespace ctmq::eval {

constexpr int kEvalJsonVersion = 1;

struct EvalRecord {
  std::string stage;
  quant::BitDepths bits;
  EvalResult result;
  std::vector<std::string> class_names;
  bool bn_recalibrated = false;
  double elapsed_s = 0;
  int ranks = 1;
};

// JSON text with the fields of docs/run-directory.md; NaN per-class
// accuracies (classes absent from the evaluated samples) become null.
std::string eval_json(const EvalRecord& record);

}  // namespace ctmq::eval
