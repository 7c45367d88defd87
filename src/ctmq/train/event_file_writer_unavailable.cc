// EventFileWriter in a build without Protocol Buffers (CTMQ_TENSORBOARD=OFF
// or not found): a stage that asks for TensorBoard event files is refused
// before it trains, naming the option that turns them off.
#include "ctmq/common/build_features.h"
#include "ctmq/train/event_file_writer.h"

namespace ctmq::train {

EventFileWriter::EventFileWriter(const std::string& directory) {
  throw_missing_feature(
      BuildFeature::kTensorBoard, "writing TensorBoard event files to " + directory,
      "or set [train] tensorboard = false (--tensorboard false) to train without them");
}

void EventFileWriter::write_scalars(int64_t, const std::vector<std::pair<std::string, double>>&) {}

void EventFileWriter::write_record(const std::string&) {}

}  // namespace ctmq::train
