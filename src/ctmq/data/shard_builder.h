// ctmq-shard's library side: plan the shards of an input data set, convert
// one slice of them (a job-array task), and merge the slices' summaries into
// the manifest (docs/shard-format.md).
//
// The plan depends only on the inputs and records_per_shard, never on the
// number of array tasks, so one process and any job array write identical
// shard files and byte-identical manifests.
#pragma once

#include <cstdint>
#include <string>

#include "ctmq/data/manifest.h"
#include "ctmq/data/record_source.h"

namespace ctmq::data {

enum class BuildStep {
  kAll,    // convert every shard, then merge (one process)
  kSlice,  // convert the shards of array task array_index of array_count
  kMerge,  // check that every shard is complete, write the manifest
};

struct ShardBuildOptions {
  SourceOptions source;
  std::string output_dir;
  // Records per shard; 0 = about 256 MiB per shard.
  int64_t records_per_shard = 0;
  BuildStep step = BuildStep::kAll;
  int array_index = 0;  // kSlice: 0 <= array_index < array_count
  int array_count = 1;
};

struct ShardPlan {
  ImageShape shape;
  RecordKind record = RecordKind::kFixed;
  EncodingPolicy encoding;  // kEncoded only
  int64_t count = 0;
  int64_t records_per_shard = 0;
  int64_t num_shards = 0;
  std::vector<std::string> class_names;
  std::string source_json;
  uint32_t fingerprint = 0;  // crc32 of everything above
};

// records_per_shard 0: about 256 MiB per shard for fixed records,
// kDefaultEncodedRecordsPerShard for encoded ones (their sizes are not known
// before they are converted, and the plan may not depend on them).
ShardPlan make_shard_plan(const RecordSource& source, int64_t records_per_shard,
                          RecordKind record = RecordKind::kFixed,
                          const EncodingPolicy& encoding = {});
inline constexpr int64_t kDefaultEncodedRecordsPerShard = 2048;

// Shards [begin, end) converted by array task `index` of `count`.
void slice_range(int64_t num_shards, int index, int count, int64_t& begin, int64_t& end);

// Runs options.step. Throws ctmq::Error (naming the file and record) on bad
// input; refuses an output directory that already holds a manifest.
// Returns the manifest for kAll and kMerge (empty for kSlice).
Manifest build_shards(const ShardBuildOptions& options);

// Reads every record of the data set at `manifest_path`, verifying each
// record's checksum and each shard file's crc32. Throws ctmq::Error naming
// the file (and record) of the first problem.
void verify_data_set(const std::string& manifest_path);

}  // namespace ctmq::data
