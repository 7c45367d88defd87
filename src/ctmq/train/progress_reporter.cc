#include "ctmq/train/progress_reporter.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <sstream>

#include "ctmq/common/log.h"

namespace ctmq::train {

std::string format_duration(double seconds) {
  if (seconds < 0 || seconds != seconds) return "?";
  int64_t s = static_cast<int64_t>(seconds + 0.5);
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof(text), "%ldh%02ldm", static_cast<long>(s / 3600),
                  static_cast<long>((s % 3600) / 60));
  } else if (s >= 60) {
    std::snprintf(text, sizeof(text), "%ldm%02lds", static_cast<long>(s / 60),
                  static_cast<long>(s % 60));
  } else {
    std::snprintf(text, sizeof(text), "%lds", static_cast<long>(s));
  }
  return text;
}

ProgressReporter::ProgressReporter(std::string stage, int64_t total_steps, int64_t first_step,
                                   int64_t steps_per_epoch, bool enabled)
    : stage_(std::move(stage)),
      total_steps_(total_steps),
      first_step_(first_step),
      steps_per_epoch_(steps_per_epoch),
      enabled_(enabled),
      terminal_(enabled && ::isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()) {}

void ProgressReporter::report(int64_t global_step, double loss, double accuracy, double lr,
                              double images_per_s, double data_wait) {
  if (!enabled_) return;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t done = global_step - first_step_;
  const double eta = done > 0 ? elapsed / done * (total_steps_ - global_step) : -1;
  const int64_t epoch = (global_step - 1) / steps_per_epoch_ + 1;
  const int64_t epochs = (total_steps_ + steps_per_epoch_ - 1) / steps_per_epoch_;
  char numbers[200];
  std::snprintf(numbers, sizeof(numbers),
                "epoch %ld/%ld step %ld/%ld loss %.4f acc %.2f%% lr %.3g %.0f img/s ETA %s "
                "data wait %.0f%%",
                static_cast<long>(epoch), static_cast<long>(epochs), static_cast<long>(global_step),
                static_cast<long>(total_steps_), loss, 100.0 * accuracy, lr, images_per_s,
                format_duration(eta).c_str(), 100.0 * data_wait);
  if (terminal_) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(kWidth * global_step / std::max<int64_t>(1, total_steps_));
    std::string bar(filled, '#');
    bar.resize(kWidth, '.');
    std::cerr << "\r" << stage_ << " [" << bar << "] " << numbers << "\033[K" << std::flush;
  } else {
    CTMQ_INFO(stage_ << ": " << numbers);
  }
}

void ProgressReporter::finish() {
  if (enabled_ && terminal_) std::cerr << "\n";
}

}  // namespace ctmq::train
