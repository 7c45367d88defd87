// The run directory: the unit of work on shared storage.
//
//   RUN/config.ini                  the resolved configuration of the chain
//   RUN/plan.tsv                    the ordered stages (written by ctmq-plan)
//   RUN/stages/STAGE/config.ini     resolved options of that stage's training
//   RUN/stages/STAGE/checkpoints/   step-NNNNNNNN.pt files (see train/checkpoint.h)
//   RUN/stages/STAGE/final.pt       the stage's result: the next stage's init
//   RUN/stages/STAGE/metrics.jsonl  one JSON object per logged training step
//   RUN/stages/STAGE/eval.json      the evaluation of final.pt (ctmq-eval)
//   RUN/stages/STAGE/eval-network.pt  final.pt with re-estimated BatchNorm, as evaluated
//   RUN/stages/STAGE/DONE           written last and atomically: the stage is complete
//   RUN/tensorboard/STAGE/          TensorBoard event files of that stage's training
//   RUN/logs/                       job logs
//
// A stage is complete exactly when its DONE marker exists and verifies.
#pragma once

#include <string>

namespace ctmq {

class RunLayout {
 public:
  explicit RunLayout(std::string root) : root_(std::move(root)) {}

  const std::string& root() const { return root_; }
  std::string config() const { return root_ + "/config.ini"; }
  std::string plan() const { return root_ + "/plan.tsv"; }
  std::string logs() const { return root_ + "/logs"; }
  std::string stage(const std::string& name) const { return root_ + "/stages/" + name; }
  std::string stage_config(const std::string& name) const { return stage(name) + "/config.ini"; }
  std::string checkpoints(const std::string& name) const { return stage(name) + "/checkpoints"; }
  std::string final_weights(const std::string& name) const { return stage(name) + "/final.pt"; }
  std::string metrics(const std::string& name) const { return stage(name) + "/metrics.jsonl"; }
  std::string eval(const std::string& name) const { return stage(name) + "/eval.json"; }
  // The network eval.json scored when ctmq-eval re-estimated BatchNorm first
  // (W1A1 stages only: what ctmq-export packs); absent otherwise.
  std::string eval_network(const std::string& name) const {
    return stage(name) + "/eval-network.pt";
  }
  std::string done_marker(const std::string& name) const { return stage(name) + "/DONE"; }
  // One directory per stage, so that `tensorboard --logdir RUN/tensorboard`
  // shows each stage as a run of its own.
  std::string tensorboard(const std::string& name) const { return root_ + "/tensorboard/" + name; }

  // True when the stage's DONE note exists and verifies; false when absent.
  // Throws ctmq::Error naming the note when it is damaged: not JSON, no or a
  // failing "note_crc32" (CRC-32 of the note's canonical JSON without that
  // field), or another stage's name.
  bool is_done(const std::string& name) const;
  // Writes DONE atomically: `note_json` (a JSON object; summary of the stage)
  // with "stage" and "note_crc32" added.
  void mark_done(const std::string& name, const std::string& note_json) const;

 private:
  std::string root_;
};

}  // namespace ctmq
