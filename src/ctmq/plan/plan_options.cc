#include "ctmq/plan/plan_options.h"

#include "ctmq/common/error.h"
#include "ctmq/quant/bit_depths.h"

namespace ctmq::plan {

Schedule parse_schedule(const std::string& value) {
  return parse_enum(kScheduleNames, value, "[plan] schedule",
                    "a: full staircase every cycle; b: one staircase, then accurate <-> target");
}

AccurateModel parse_accurate_model(const std::string& value) {
  return parse_enum(kAccurateModelNames, value, "[plan] accurate");
}

int parse_activation_bits(const std::string& value) {
  if (value == "same") return 0;
  int bits = -1;
  try {
    size_t used = 0;
    bits = std::stoi(value, &used);
    if (used != value.size()) bits = -1;
  } catch (const std::exception&) {
    bits = -1;
  }
  CTMQ_CHECK(quant::is_valid_bits(bits),
             "[plan] a-bits: '" << value << "' is not valid; expected same, 1..8 or 32");
  return bits;
}

std::string schedule_name(Schedule schedule) { return enum_name(kScheduleNames, schedule); }
std::string accurate_model_name(AccurateModel accurate) {
  return enum_name(kAccurateModelNames, accurate);
}

void validate(const PlanOptions& o) {
  CTMQ_CHECK(o.k_start >= 1 && o.k_start <= quant::kMaxQuantizedBits,
             "[plan] k-start = " << o.k_start << " is out of range; expected 1.."
                                 << quant::kMaxQuantizedBits);
  CTMQ_CHECK(o.k_target >= 1 && o.k_target <= o.k_start,
             "[plan] k-target = " << o.k_target << " must be between 1 and k-start = " << o.k_start
                                  << " (steps go down in bits)");
  CTMQ_CHECK(o.step >= 1, "[plan] step = " << o.step << " must be at least 1 bit");
  CTMQ_CHECK(o.cycles >= 1, "[plan] cycles = " << o.cycles << " must be at least 1");
  CTMQ_CHECK(o.a_bits == 0 || quant::is_valid_bits(o.a_bits),
             "[plan] a-bits = " << o.a_bits << " is not valid; expected same, 1..8 or 32");
  const bool pretrained = o.pretrained != "none";
  if (pretrained) {
    const bool known =
        o.pretrained.rfind("torchvision:", 0) == 0 || o.pretrained.rfind("weights:", 0) == 0;
    CTMQ_CHECK(known && o.pretrained.find(':') + 1 < o.pretrained.size(),
               "[plan] pretrained = '" << o.pretrained
                                       << "'; expected none, torchvision:PATH or weights:PATH");
    CTMQ_CHECK(o.pretrained.find_first_of("\t\n") == std::string::npos,
               "[plan] pretrained: the path must not contain tabs or newlines");
  }
  CTMQ_CHECK(
      o.epochs_pretrain >= 1,
      "[plan] epochs-pretrain = " << o.epochs_pretrain
                                  << " must be at least 1 (with pretrained set, c0-fp "
                                     "fine-tunes the imported weights for that many epochs)");
  CTMQ_CHECK(o.epochs_step >= 1, "[plan] epochs-step = " << o.epochs_step << " must be at least 1");
  CTMQ_CHECK(o.epochs_result >= 0,
             "[plan] epochs-result = " << o.epochs_result << " must be >= 0 (0 = epochs-step)");
  if (o.cycles > 1) {
    CTMQ_CHECK(o.epochs_accurate >= 1,
               "[plan] epochs-accurate = " << o.epochs_accurate << " must be at least 1");
    CTMQ_CHECK(o.accurate != AccurateModel::kKStart || o.k_start > o.k_target,
               "[plan] accurate = k-start with k-start = k-target = "
                   << o.k_target << " leaves nothing to train after the accurate model in cycles "
                   << "2.." << o.cycles << "; use accurate = fp or k-plus-one");
    CTMQ_CHECK(o.accurate != AccurateModel::kKPlusOne || o.k_target < quant::kMaxQuantizedBits,
               "[plan] accurate = k-plus-one needs k-target < " << quant::kMaxQuantizedBits);
  }
}

}  // namespace ctmq::plan
