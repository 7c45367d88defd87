// The JSON manifest of a sharded data set (docs/shard-format.md): what the
// merge step writes last and what ShardDataset opens first.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ctmq/data/shard_format.h"

namespace ctmq::data {

struct ShardEntry {
  std::string path;  // relative to the manifest's directory
  int64_t first_index = 0;
  int64_t count = 0;
  int64_t bytes = 0;
  uint32_t crc32 = 0;  // of the whole shard file
};

struct Manifest {
  int version = kManifestVersionFixed;  // kManifestVersionEncoded for encoded records
  std::string source_json = "{}";       // free-form description of the inputs (a JSON object)
  ImageShape shape;                     // encoded records: the shape the reader delivers
  // Record type and, for kEncoded, the policy it was built with (max_side 0 =
  // every file kept).
  RecordKind record = RecordKind::kFixed;
  int64_t max_side = 0;
  int jpeg_quality = 0;
  int64_t count = 0;
  int64_t records_per_shard = 0;
  std::vector<std::string> class_names;
  std::vector<int64_t> class_counts;
  std::vector<uint64_t> pixel_sum;          // per channel, exact
  std::vector<uint64_t> pixel_sum_squares;  // per channel, exact
  // Pixels per channel that the sums cover: count * height * width for fixed
  // records, the stored images' own sizes summed for encoded ones.
  uint64_t pixel_count = 0;
  std::vector<double> mean;  // per channel, [0, 1] scale
  std::vector<double> std;   // per channel, [0, 1] scale
  std::vector<ShardEntry> shards;
};

// Fills mean/std from the exact pixel sums and count.
void compute_normalisation(Manifest& manifest);

// Deterministic JSON text (same manifest -> same bytes).
std::string manifest_to_json(const Manifest& manifest);

// Parses and validates a manifest; `path` names it in errors. Refuses newer
// versions, inconsistent counts, and shard paths outside the manifest's
// directory (absolute, or with a ".." component).
Manifest parse_manifest(const std::string& text, const std::string& path);

// Reads `path` and parses it.
Manifest load_manifest(const std::string& path);

// Throws ctmq::Error unless `relative` stays inside its base directory.
void check_path_inside(const std::string& relative, const std::string& manifest_path);

}  // namespace ctmq::data
