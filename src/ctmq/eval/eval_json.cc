#include "ctmq/eval/eval_json.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace ctmq::eval {

std::string eval_json(const EvalRecord& record) {
  const EvalResult& r = record.result;
  nlohmann::json j;
  j["version"] = kEvalJsonVersion;
  j["stage"] = record.stage;
  j["w_bits"] = record.bits.weight;
  j["a_bits"] = record.bits.activation;
  j["samples"] = r.samples;
  j["top1"] = r.top1;
  j["top5"] = r.top5 ? nlohmann::json(*r.top5) : nlohmann::json();
  j["loss"] = r.loss;
  j["per_class_accuracy"] = nlohmann::json::array();
  for (double a : r.per_class_accuracy)
    j["per_class_accuracy"].push_back(std::isnan(a) ? nlohmann::json() : nlohmann::json(a));
  j["class_names"] = record.class_names;
  nlohmann::json confusion = nlohmann::json::array();
  torch::Tensor c = r.confusion.contiguous();
  for (int64_t row = 0; row < c.size(0); ++row) {
    std::vector<int64_t> values(c[row].data_ptr<int64_t>(), c[row].data_ptr<int64_t>() + c.size(1));
    confusion.push_back(values);
  }
  j["confusion"] = confusion;
  j["bn_recalibrated"] = record.bn_recalibrated;
  j["elapsed_s"] = record.elapsed_s;
  j["ranks"] = record.ranks;
  return j.dump(2) + "\n";
}

}  // namespace ctmq::eval
