#include "ctmq/status/status_table.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "ctmq/train/progress_reporter.h"

namespace ctmq::status {
namespace {

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string bits_text(const plan::Stage& stage) {
  if (stage.bits.weight == 32 && stage.bits.activation == 32) return "fp";
  return "W" + std::to_string(stage.bits.weight) + "A" + std::to_string(stage.bits.activation);
}

std::string step_text(const StageStatus& s) {
  if (s.step < 0) return s.total_steps > 0 ? "0/" + std::to_string(s.total_steps) : "-";
  return std::to_string(s.step) + "/" + (s.total_steps > 0 ? std::to_string(s.total_steps) : "?");
}

std::string top1_text(const StageStatus& s) {
  if (s.top1) return fixed(*s.top1, 2);
  return s.evaluated ? "?" : "-";
}

std::string job_text(const StageStatus& s) {
  if (s.train_job.empty() && s.eval_job.empty()) return "-";
  return (s.train_job.empty() ? "-" : s.train_job) + "/" + (s.eval_job.empty() ? "-" : s.eval_job);
}

// A detail (an error message) as one TSV field.
std::string one_field(std::string text) {
  std::replace_if(
      text.begin(), text.end(), [](char c) { return c == '\t' || c == '\n'; }, ' ');
  return text;
}

}  // namespace

std::string format_status_table(const std::vector<StageStatus>& statuses,
                                const std::vector<std::string>& notes) {
  std::vector<std::vector<std::string>> rows = {
      {"stage", "bits", "epochs", "state", "step", "img/s", "ETA", "top-1", "job"}};
  for (const StageStatus& s : statuses) {
    const bool running = s.state == StageState::kRunning;
    rows.push_back({s.stage->name, bits_text(*s.stage), std::to_string(s.stage->epochs),
                    state_text(s), step_text(s),
                    s.images_per_s >= 0 ? fixed(s.images_per_s, 0) : "-",
                    running && s.eta_s >= 0 ? train::format_duration(s.eta_s) : "-", top1_text(s),
                    job_text(s)});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  std::ostringstream out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      std::string cell = row[c];
      if (c + 1 < row.size()) cell.resize(width[c] + 2, ' ');
      line += cell;
    }
    out << line << "\n";
  }
  for (const std::string& note : notes) out << "note: " << note << "\n";
  return out.str();
}

std::string format_status_tsv(const std::vector<StageStatus>& statuses) {
  std::ostringstream out;
  out << "stage\tw_bits\ta_bits\tepochs\tstate\tdetail\tstep\ttotal_steps\timages_per_s\teta_s\t"
         "top1\ttrain_job\teval_job\n";
  for (const StageStatus& s : statuses) {
    out << s.stage->name << "\t" << s.stage->bits.weight << "\t" << s.stage->bits.activation << "\t"
        << s.stage->epochs << "\t" << state_name(s) << "\t" << one_field(s.detail) << "\t"
        << (s.step >= 0 ? std::to_string(s.step) : "") << "\t"
        << (s.total_steps > 0 ? std::to_string(s.total_steps) : "") << "\t"
        << (s.images_per_s >= 0 ? fixed(s.images_per_s, 1) : "") << "\t"
        << (s.eta_s >= 0 ? fixed(s.eta_s, 0) : "") << "\t" << (s.top1 ? fixed(*s.top1, 2) : "")
        << "\t" << s.train_job << "\t" << s.eval_job << "\n";
  }
  return out.str();
}

}  // namespace ctmq::status
