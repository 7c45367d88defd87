#include "ctmq/train/metrics_log.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/common/json_integer.h"

namespace ctmq::train {

MetricsLog::MetricsLog(std::string path, int64_t resume_global_step) : path_(std::move(path)) {
  if (std::filesystem::exists(path_)) {
    std::istringstream in(read_file(path_));
    std::string line, kept;
    bool dropped = false;
    while (std::getline(in, line)) {
      auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      const std::optional<int64_t> step =
          record.is_object() ? json_integer_or<int64_t>(record, "global_step", -1) : std::nullopt;
      if (!step || *step < 0 || *step > resume_global_step) {
        dropped = true;  // a torn last line, or a step the resumed run redoes
        continue;
      }
      kept += line + "\n";
    }
    if (dropped) write_file_atomically(path_, kept);
  }
  out_.open(path_, std::ios::app);
  CTMQ_CHECK(out_, "cannot append to " << path_);
}

namespace {

// The fields every record starts with: its kind and where in the stage it is.
template <typename Metrics>
nlohmann::json record_head(const char* kind, const Metrics& m) {
  return {{"kind", kind},
          {"stage", m.stage},
          {"w_bits", m.w_bits},
          {"a_bits", m.a_bits},
          {"epoch", m.epoch},
          {"step", m.step},
          {"global_step", m.global_step},
          {"elapsed_s", m.elapsed_s}};
}

void write_line(std::ofstream& out, const std::string& path, const nlohmann::json& record) {
  out << record.dump() << "\n" << std::flush;
  CTMQ_CHECK(out, "cannot append to " << path << " (disk full?)");
}

}  // namespace

void MetricsLog::append(const StepMetrics& m) {
  nlohmann::json record = record_head("train", m);
  record["total_steps"] = m.total_steps;
  record["loss"] = m.loss;
  record["accuracy"] = m.accuracy;
  record["lr"] = m.lr;
  record["images_per_s"] = m.images_per_s;
  record["ranks"] = m.ranks;
  record["data_wait_s"] = m.data_wait_s;
  record["epoch_data_wait_s"] = m.epoch_data_wait_s;
  write_line(out_, path_, record);
}

void MetricsLog::append(const EvalMetrics& m) {
  nlohmann::json record = record_head("eval", m);
  record["samples"] = m.samples;
  record["top1"] = m.top1;
  record["top5"] = m.top5 ? nlohmann::json(*m.top5) : nlohmann::json();
  record["loss"] = m.loss;
  record["eval_s"] = m.eval_s;
  write_line(out_, path_, record);
}

}  // namespace ctmq::train
