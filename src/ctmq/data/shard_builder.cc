#include "ctmq/data/shard_builder.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/common/json_integer.h"
#include "ctmq/common/log.h"
#include "ctmq/data/shard_dataset.h"
#include "ctmq/data/shard_file.h"
#include "ctmq/data/shard_writer.h"

namespace ctmq::data {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

constexpr int64_t kDefaultShardBytes = int64_t{256} << 20;

std::string shard_path(const std::string& dir, int64_t index) {
  return (fs::path(dir) / shard_file_name(index)).string();
}
std::string part_path(const std::string& dir, int64_t index) {
  return shard_path(dir, index) + kPartSuffix;
}

json summary_to_json(const ShardSummary& s, int64_t index, const ShardPlan& plan) {
  json j;
  j["plan"] = crc32_hex(plan.fingerprint);
  j["shard"] = index;
  j["path"] = fs::path(s.path).filename().string();
  j["first_index"] = s.first_index;
  j["count"] = s.count;
  j["bytes"] = s.bytes;
  j["crc32"] = crc32_hex(s.crc32);
  j["class_counts"] = s.class_counts;
  j["pixel_sum"] = s.pixel_sum;
  j["pixel_sum_squares"] = s.pixel_sum_squares;
  j["pixel_count"] = s.pixel_count;
  return j;
}

// The part summary of shard `index` if it exists, matches the plan, and its
// shard file has the recorded size; otherwise an empty optional and `why`.
bool load_part(const std::string& dir, int64_t index, const ShardPlan& plan, ShardSummary& out,
               std::string& why) {
  const std::string path = part_path(dir, index);
  if (!fs::exists(path)) {
    why = "its part summary " + path + " is missing";
    return false;
  }
  json j;
  try {
    j = json::parse(read_file(path));
    out.path = shard_path(dir, index);
    // Integers checked (common/json_integer.h); a bad one reads as malformed.
    auto integer = [&j](const char* key) {
      const std::optional<int64_t> x = json_integer<int64_t>(j.at(key));
      if (!x) throw json::type_error::create(302, std::string(key) + " is not an integer", &j);
      return *x;
    };
    auto counts = [&j](auto zero, const char* key) {
      const auto x = json_integers<decltype(zero)>(j.at(key));
      if (!x) throw json::type_error::create(302, std::string(key) + " is not integers", &j);
      return *x;
    };
    out.first_index = integer("first_index");
    out.count = integer("count");
    out.bytes = integer("bytes");
    out.crc32 = parse_crc32_hex(j.at("crc32").get<std::string>(), path);
    out.class_counts = counts(int64_t{0}, "class_counts");
    out.pixel_sum = counts(uint64_t{0}, "pixel_sum");
    out.pixel_sum_squares = counts(uint64_t{0}, "pixel_sum_squares");
    const std::optional<uint64_t> pixel_count = json_integer_or<uint64_t>(j, "pixel_count", 0);
    if (!pixel_count) throw json::type_error::create(302, "pixel_count is not an integer", &j);
    out.pixel_count = *pixel_count;
    if (j.at("plan").get<std::string>() != crc32_hex(plan.fingerprint)) {
      why = "its part summary " + path + " belongs to another build (different inputs or options)";
      return false;
    }
  } catch (const json::exception& e) {
    why = "its part summary " + path + " is malformed (" + e.what() + ")";
    return false;
  }
  const int64_t first = index * plan.records_per_shard;
  const int64_t count = std::min(plan.records_per_shard, plan.count - first);
  std::error_code ec;
  const auto size = fs::file_size(out.path, ec);
  if (out.first_index != first || out.count != count ||
      out.class_counts.size() != plan.class_names.size() ||
      static_cast<int64_t>(out.pixel_sum.size()) != plan.shape.channels) {
    why = "its part summary " + path + " disagrees with the plan";
    return false;
  }
  if (ec) {
    why = "its shard file " + out.path + " is missing";
    return false;
  }
  const bool size_ok = plan.record == RecordKind::kEncoded
                           ? out.bytes >= kShardHeaderSize + count * (kEncodedRecordOverhead + 1) +
                                              encoded_index_size(count)
                           : out.bytes == kShardHeaderSize + count * record_size(plan.shape);
  if (static_cast<int64_t>(size) != out.bytes || !size_ok) {
    why = "its shard file " + out.path + " has " + std::to_string(size) + " bytes, expected " +
          std::to_string(out.bytes) + " (truncated?)";
    return false;
  }
  return true;
}

void convert_shards(RecordSource& source, const ShardPlan& plan, const std::string& dir,
                    int64_t begin, int64_t end) {
  SourceRecord record;
  int64_t position = -1;
  for (int64_t s = begin; s < end; ++s) {
    ShardSummary existing;
    std::string why;
    if (load_part(dir, s, plan, existing, why)) {
      CTMQ_INFO("shard " << existing.path << " is already complete; skipped");
      continue;
    }
    const int64_t first = s * plan.records_per_shard;
    const int64_t count = std::min(plan.records_per_shard, plan.count - first);
    // An incomplete shard from an earlier, failed run is replaced; its part
    // summary goes first so that it can never describe the new file.
    std::error_code ec;
    fs::remove(part_path(dir, s), ec);
    if (position != first) source.seek(first);
    ShardWriter writer(shard_path(dir, s), plan.shape, first, count,
                       static_cast<int64_t>(plan.class_names.size()), plan.record);
    for (int64_t i = 0; i < count; ++i) {
      try {
        source.read(record);
      } catch (const ctmq::Error& e) {
        // Name the record too (image-folder errors name only the file).
        throw ctmq::Error(std::string(e.what()) + " [input record " + std::to_string(first + i) +
                          ", for " + shard_file_name(s) + "]");
      }
      const std::string where = "input record " + std::to_string(first + i);
      if (plan.record == RecordKind::kEncoded) {
        CTMQ_ASSERT(static_cast<int64_t>(record.pixels.size()) ==
                    plan.shape.channels * record.height * record.width);
        writer.add_encoded(record.label, record.encoded, record.pixels.data(), record.height,
                           record.width, where);
        continue;
      }
      CTMQ_CHECK(static_cast<int64_t>(record.pixels.size()) == plan.shape.pixels(),
                 where << " has " << record.pixels.size() << " pixel bytes, expected "
                       << plan.shape.pixels());
      writer.add(record.label, record.pixels.data(), where);
    }
    position = first + count;
    ShardSummary summary = writer.finish();
    write_file_atomically(part_path(dir, s), summary_to_json(summary, s, plan).dump(2) + "\n");
    CTMQ_INFO("wrote " << summary.path << " (" << count << " records)");
  }
}

Manifest merge(const ShardPlan& plan, const ShardBuildOptions& options) {
  Manifest m;
  m.source_json = plan.source_json;
  m.shape = plan.shape;
  m.record = plan.record;
  if (plan.record == RecordKind::kEncoded) {
    m.version = kManifestVersionEncoded;
    m.max_side = plan.encoding.max_side;
    m.jpeg_quality = plan.encoding.jpeg_quality;
  }
  m.count = plan.count;
  m.records_per_shard = plan.records_per_shard;
  m.class_names = plan.class_names;
  m.class_counts.assign(plan.class_names.size(), 0);
  m.pixel_sum.assign(plan.shape.channels, 0);
  m.pixel_sum_squares.assign(plan.shape.channels, 0);
  for (int64_t s = 0; s < plan.num_shards; ++s) {
    ShardSummary part;
    std::string why;
    if (!load_part(options.output_dir, s, plan, part, why)) {
      std::ostringstream task;
      if (options.array_count > 1) {
        for (int t = 0; t < options.array_count; ++t) {
          int64_t b, e;
          slice_range(plan.num_shards, t, options.array_count, b, e);
          if (s >= b && s < e) task << " (array task " << t << " of " << options.array_count << ")";
        }
      }
      CTMQ_FAIL("merge: shard " << s << task.str() << " is not complete: " << why
                                << "; re-run that slice, then merge again");
    }
    // The shard's header must agree too (catches a file replaced under us).
    {
      const ShardHeader header =
          ShardFile(part.path, "part summary " + part_path(options.output_dir, s)).header();
      CTMQ_CHECK(header.shape == plan.shape && header.record() == plan.record &&
                     static_cast<int64_t>(header.record_count) == part.count &&
                     static_cast<int64_t>(header.first_index) == part.first_index,
                 "merge: shard " << part.path << " header disagrees with its part summary");
    }
    for (size_t c = 0; c < part.class_counts.size(); ++c) m.class_counts[c] += part.class_counts[c];
    for (int64_t c = 0; c < plan.shape.channels; ++c) {
      m.pixel_sum[c] += part.pixel_sum[c];
      m.pixel_sum_squares[c] += part.pixel_sum_squares[c];
    }
    m.pixel_count += part.pixel_count;
    m.shards.push_back({fs::path(part.path).filename().string(), part.first_index, part.count,
                        part.bytes, part.crc32});
  }
  compute_normalisation(m);
  write_file_atomically((fs::path(options.output_dir) / kManifestName).string(),
                        manifest_to_json(m));
  // Every slice is complete, so temporary files left by killed tasks are stale.
  for (const auto& entry : fs::directory_iterator(options.output_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("shard-", 0) == 0 && name.find(".tmp.") != std::string::npos) {
      std::error_code ec;
      fs::remove(entry.path(), ec);
    }
  }
  return m;
}

}  // namespace

ShardPlan make_shard_plan(const RecordSource& source, int64_t records_per_shard, RecordKind record,
                          const EncodingPolicy& encoding) {
  ShardPlan plan;
  plan.shape = source.shape();
  plan.record = record;
  if (record == RecordKind::kEncoded) plan.encoding = encoding;
  plan.count = source.count();
  CTMQ_CHECK(plan.count > 0, "the input holds no records");
  CTMQ_CHECK(fits_in_a_record(plan.shape),
             "the input " << source.describe_json() << " gives images of " << plan.shape.channels
                          << " x " << plan.shape.height << " x " << plan.shape.width
                          << " values, over the 1 GiB limit of a shard record; check the input's "
                             "header, or choose a smaller size (ctmq-shard --image-size)");
  CTMQ_CHECK(records_per_shard >= 0, "--records-per-shard must be >= 0 (0 = automatic)");
  plan.records_per_shard = records_per_shard > 0 ? records_per_shard
                           : record == RecordKind::kEncoded
                               ? kDefaultEncodedRecordsPerShard
                               : std::max<int64_t>(1, kDefaultShardBytes / record_size(plan.shape));
  plan.records_per_shard = std::min(plan.records_per_shard, plan.count);
  plan.num_shards = (plan.count + plan.records_per_shard - 1) / plan.records_per_shard;
  plan.class_names = source.class_names();
  plan.source_json = source.describe_json();
  json j;
  j["source"] = json::parse(plan.source_json);
  j["shape"] = {plan.shape.channels, plan.shape.height, plan.shape.width};
  j["count"] = plan.count;
  j["records_per_shard"] = plan.records_per_shard;
  j["class_names"] = plan.class_names;
  j["format_version"] = shard_version_of(record);
  if (record == RecordKind::kEncoded) {  // fixed plans keep their version-1 fingerprint
    j["record"] = record_kind_name(record);
    j["max_side"] = encoding.max_side;
    j["jpeg_quality"] = encoding.jpeg_quality;
  }
  const std::string text = j.dump();
  plan.fingerprint = crc32_of(text.data(), text.size());
  return plan;
}

void slice_range(int64_t num_shards, int index, int count, int64_t& begin, int64_t& end) {
  CTMQ_CHECK(count >= 1 && index >= 0 && index < count,
             "--array-index " << index << " is outside [0, --array-count " << count << ")");
  begin = num_shards * index / count;
  end = num_shards * (index + 1) / count;
}

Manifest build_shards(const ShardBuildOptions& options) {
  CTMQ_CHECK(!options.output_dir.empty(), "no --output directory given");
  const std::string manifest_path = (fs::path(options.output_dir) / kManifestName).string();
  CTMQ_CHECK(!fs::exists(manifest_path),
             "output " << options.output_dir << " already holds a complete data set ("
                       << manifest_path << "); remove the directory or choose another --output");
  auto source = open_record_source(options.source);
  const ShardPlan plan = make_shard_plan(*source, options.records_per_shard, options.source.record,
                                         options.source.encoding);
  std::error_code ec;
  fs::create_directories(options.output_dir, ec);
  CTMQ_CHECK(!ec, "cannot create --output " << options.output_dir << ": " << ec.message());
  int64_t begin = 0, end = plan.num_shards;
  if (options.step == BuildStep::kSlice) {
    slice_range(plan.num_shards, options.array_index, options.array_count, begin, end);
  }
  if (options.step != BuildStep::kMerge) {
    CTMQ_INFO("converting shards [" << begin << ", " << end << ") of " << plan.num_shards << " ("
                                    << plan.count << " records) into " << options.output_dir);
    convert_shards(*source, plan, options.output_dir, begin, end);
  }
  if (options.step == BuildStep::kSlice) return Manifest{};
  return merge(plan, options);
}

void verify_data_set(const std::string& manifest_path) {
  ShardDataset dataset(manifest_path);  // checks headers and sizes
  const Manifest manifest = load_manifest(manifest_path);
  const fs::path dir = fs::path(manifest_path).parent_path();
  // Per-record checksums, in batches.
  constexpr int64_t kBatch = 4096;
  std::vector<int64_t> indices;
  for (int64_t begin = 0; begin < dataset.size(); begin += kBatch) {
    indices.clear();
    for (int64_t i = begin; i < std::min(dataset.size(), begin + kBatch); ++i) indices.push_back(i);
    dataset.get_batch(indices);
  }
  // Whole-file checksums.
  for (const auto& shard : manifest.shards) {
    const std::string path = (dir / shard.path).string();
    const uint32_t crc = ShardFile(path, "manifest " + manifest_path).file_crc32();
    CTMQ_CHECK(crc == shard.crc32, "shard " << path << ": file checksum " << crc32_hex(crc)
                                            << " differs from the manifest's "
                                            << crc32_hex(shard.crc32)
                                            << "; the file is corrupt: rebuild it with ctmq-shard");
  }
}

}  // namespace ctmq::data
