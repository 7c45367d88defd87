#include "ctmq/train/tensorboard_log.h"

#include <filesystem>

namespace ctmq::train {
namespace {

// Removes `directory`'s TensorBoard event files; returns `directory`.
const std::string& without_event_files(const std::string& directory) {
  namespace fs = std::filesystem;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(directory, error)) {
    if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0)
      fs::remove(entry.path());
  }
  return directory;
}

}  // namespace

TensorBoardLog::TensorBoardLog(const std::string& directory, bool fresh_start)
    : writer_(fresh_start ? without_event_files(directory) : directory) {}

void TensorBoardLog::append(const StepMetrics& m) {
  writer_.write_scalars(m.global_step, {{"train/loss", m.loss},
                                        {"train/accuracy", m.accuracy},
                                        {"train/learning_rate", m.lr},
                                        {"train/images_per_second", m.images_per_s}});
}

void TensorBoardLog::append(const EvalMetrics& m) {
  std::vector<std::pair<std::string, double>> scalars = {{"eval/top1", m.top1}};
  if (m.top5) scalars.emplace_back("eval/top5", *m.top5);
  scalars.emplace_back("eval/loss", m.loss);
  writer_.write_scalars(m.global_step, scalars);
}

}  // namespace ctmq::train
