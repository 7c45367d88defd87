#include "ctmq/train/metrics_log.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"

namespace ctmq::train {

MetricsLog::MetricsLog(std::string path, int64_t resume_global_step) : path_(std::move(path)) {
  if (std::filesystem::exists(path_)) {
    std::istringstream in(read_file(path_));
    std::string line, kept;
    bool dropped = false;
    while (std::getline(in, line)) {
      auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (record.is_discarded() || !record.contains("global_step") ||
          record["global_step"].get<int64_t>() > resume_global_step) {
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

void MetricsLog::append(const StepMetrics& m) {
  nlohmann::json record = {{"kind", "train"},
                           {"stage", m.stage},
                           {"w_bits", m.w_bits},
                           {"a_bits", m.a_bits},
                           {"epoch", m.epoch},
                           {"step", m.step},
                           {"global_step", m.global_step},
                           {"total_steps", m.total_steps},
                           {"loss", m.loss},
                           {"accuracy", m.accuracy},
                           {"lr", m.lr},
                           {"images_per_s", m.images_per_s},
                           {"elapsed_s", m.elapsed_s},
                           {"ranks", m.ranks},
                           {"data_wait_s", m.data_wait_s},
                           {"epoch_data_wait_s", m.epoch_data_wait_s}};
  out_ << record.dump() << "\n" << std::flush;
  CTMQ_CHECK(out_, "cannot append to " << path_ << " (disk full?)");
}

void MetricsLog::append(const EvalMetrics& m) {
  nlohmann::json record = {{"kind", "eval"},
                           {"stage", m.stage},
                           {"w_bits", m.w_bits},
                           {"a_bits", m.a_bits},
                           {"epoch", m.epoch},
                           {"step", m.step},
                           {"global_step", m.global_step},
                           {"samples", m.samples},
                           {"top1", m.top1},
                           {"top5", m.top5 ? nlohmann::json(*m.top5) : nlohmann::json()},
                           {"loss", m.loss},
                           {"eval_s", m.eval_s},
                           {"elapsed_s", m.elapsed_s}};
  out_ << record.dump() << "\n" << std::flush;
  CTMQ_CHECK(out_, "cannot append to " << path_ << " (disk full?)");
}

}  // namespace ctmq::train
