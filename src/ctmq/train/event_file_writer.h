// A TensorBoard event file (`tensorboard --logdir`): scalar summaries,
// appended and flushed record by record so that TensorBoard shows them live.
//
// Format (docs/run-directory.md, "tensorboard/"): TFRecord framing of
// protobuf `Event` messages (src/ctmq/train/tensorboard_event.proto, the
// subset of TensorBoard's event.proto / summary.proto with its field numbers).
// Each record is
//   uint64 LE  length of data
//   uint32 LE  masked CRC-32C of the 8 length bytes
//   data       a serialised Event
//   uint32 LE  masked CRC-32C of data
// with masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2^32), as in
// TensorFlow's tensorflow/core/lib/hash/crc32c.h and TFRecordWriter. The first
// event of a file carries file_version "brain.Event:2"; each later one a
// wall time (s since the Unix epoch), a step and one or more (tag, float) values.
//
// Not thread-safe; one writer per file. Errors (a directory that cannot be
// created, a full disk) throw ctmq::Error naming the file.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace ctmq::train {

class EventFileWriter {
 public:
  // Creates `directory` (and its parents) and in it a new file
  // events.out.tfevents.<unix seconds>.<hostname>[.<n>] (n counts up when a
  // file of that name exists already: never appends to an earlier file), then
  // writes the file_version event.
  explicit EventFileWriter(const std::string& directory);

  // One Event at `step` holding every (tag, value) of `scalars`; values are
  // stored as float (TensorBoard's simple_value).
  void write_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& scalars);

  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& data);

  std::string path_;
  std::ofstream out_;
};

}  // namespace ctmq::train
