#include "ctmq/data/manifest.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/common/json_integer.h"

namespace ctmq::data {

using json = nlohmann::ordered_json;

void compute_normalisation(Manifest& m) {
  const int64_t c = m.shape.channels;
  CTMQ_ASSERT(static_cast<int64_t>(m.pixel_sum.size()) == c &&
              static_cast<int64_t>(m.pixel_sum_squares.size()) == c);
  m.mean.assign(c, 0.0);
  m.std.assign(c, 1.0);
  const long double n = m.record == RecordKind::kEncoded
                            ? static_cast<long double>(m.pixel_count)
                            : static_cast<long double>(m.count) * m.shape.height * m.shape.width;
  if (n <= 0) return;
  for (int64_t i = 0; i < c; ++i) {
    long double mean = m.pixel_sum[i] / n;
    long double var = m.pixel_sum_squares[i] / n - mean * mean;
    if (var < 0) var = 0;
    // Round to 1e-12 so the printed JSON is stable across compilers.
    m.mean[i] = std::round(static_cast<double>(mean / 255.0L) * 1e12) / 1e12;
    m.std[i] = std::round(static_cast<double>(std::sqrt(var) / 255.0L) * 1e12) / 1e12;
  }
}

std::string manifest_to_json(const Manifest& m) {
  json j;
  j["format"] = "ctmq-shards";
  j["version"] = m.version;
  j["source"] = json::parse(m.source_json);
  j["channels"] = m.shape.channels;
  j["height"] = m.shape.height;
  j["width"] = m.shape.width;
  j["dtype"] = "uint8";
  if (m.record == RecordKind::kEncoded) {
    j["record"] = record_kind_name(m.record);
    j["max_side"] = m.max_side;
    j["jpeg_quality"] = m.jpeg_quality;
  }
  j["count"] = m.count;
  j["records_per_shard"] = m.records_per_shard;
  j["class_names"] = m.class_names;
  j["class_counts"] = m.class_counts;
  j["pixel_sum"] = m.pixel_sum;
  j["pixel_sum_squares"] = m.pixel_sum_squares;
  if (m.record == RecordKind::kEncoded) j["pixel_count"] = m.pixel_count;
  j["mean"] = m.mean;
  j["std"] = m.std;
  json shards = json::array();
  for (const auto& s : m.shards) {
    shards.push_back({{"path", s.path},
                      {"first_index", s.first_index},
                      {"count", s.count},
                      {"bytes", s.bytes},
                      {"crc32", crc32_hex(s.crc32)}});
  }
  j["shards"] = shards;
  return j.dump(2) + "\n";
}

void check_path_inside(const std::string& relative, const std::string& manifest_path) {
  std::filesystem::path p(relative);
  bool inside = !relative.empty() && p.is_relative() && !p.has_root_name();
  for (const auto& part : p) inside = inside && part != "..";
  CTMQ_CHECK(inside, "manifest " << manifest_path << ": shard path '" << relative
                                 << "' names a path outside its directory; shard paths must be "
                                    "relative and stay inside the manifest's directory");
}

Manifest parse_manifest(const std::string& text, const std::string& path) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    CTMQ_FAIL("manifest " << path << " is not valid JSON (" << e.what()
                          << "); rebuild it with ctmq-shard");
  }
  Manifest m;
  // Integer fields must be JSON integers (common/json_integer.h).
  auto integer = [&path](const json& v, const char* key) {
    const std::optional<int64_t> x = json_integer<int64_t>(v);
    CTMQ_CHECK(x, "manifest " << path << ": \"" << key << "\" must be an integer, found "
                              << v.dump().substr(0, 40) << "; rebuild it with ctmq-shard");
    return *x;
  };
  auto integers = [&](const json& v, const char* key) {
    CTMQ_CHECK(v.is_array(), "manifest " << path << ": \"" << key << "\" must be an array");
    std::vector<int64_t> out;
    for (const auto& e : v) out.push_back(integer(e, key));
    return out;
  };
  auto counts = [&](const json& v, const char* key) {
    std::vector<uint64_t> out;
    for (const int64_t x : integers(v, key)) {
      CTMQ_CHECK(x >= 0, "manifest " << path << ": \"" << key << "\" holds " << x
                                     << " < 0; rebuild it with ctmq-shard");
      out.push_back(static_cast<uint64_t>(x));
    }
    return out;
  };
  try {
    CTMQ_CHECK(j.value("format", "") == "ctmq-shards",
               "manifest " << path << ": \"format\" is not \"ctmq-shards\"; not a ctmq manifest");
    const int64_t version = integer(j.at("version"), "version");
    CTMQ_CHECK(version >= 1 && version <= INT32_MAX,
               "manifest " << path << ": version " << version << " is not a manifest version");
    m.version = static_cast<int>(version);
    CTMQ_CHECK(m.version <= kManifestVersion,
               "manifest " << path << ": version " << m.version
                           << " was written by a newer ctmq-shard; this ctmq reads up to version "
                           << kManifestVersion << ": upgrade ctmq");
    CTMQ_CHECK(j.at("dtype").get<std::string>() == "uint8",
               "manifest " << path << ": dtype must be uint8");
    m.source_json = j.at("source").dump();
    m.shape = {integer(j.at("channels"), "channels"), integer(j.at("height"), "height"),
               integer(j.at("width"), "width")};
    if (j.contains("record")) {
      const std::string record = j.at("record").get<std::string>();
      CTMQ_CHECK(record == "fixed" || record == "encoded",
                 "manifest " << path << ": \"record\" is '" << record
                             << "', not fixed or encoded; rebuild it with ctmq-shard");
      m.record = parse_record_kind(record);
    }
    CTMQ_CHECK((m.record == RecordKind::kEncoded) == (m.version == kManifestVersionEncoded),
               "manifest " << path << ": version " << m.version << " with "
                           << record_kind_name(m.record)
                           << " records (version 2 is exactly the encoded records); rebuild it "
                              "with ctmq-shard");
    if (m.record == RecordKind::kEncoded) {
      m.max_side = integer(j.at("max_side"), "max_side");
      m.jpeg_quality = static_cast<int>(
          std::clamp<int64_t>(integer(j.at("jpeg_quality"), "jpeg_quality"), 0, 100));
      const int64_t pixel_count = integer(j.at("pixel_count"), "pixel_count");
      CTMQ_CHECK(pixel_count >= 0, "manifest " << path << ": \"pixel_count\" is negative");
      m.pixel_count = static_cast<uint64_t>(pixel_count);
    }
    m.count = integer(j.at("count"), "count");
    m.records_per_shard = integer(j.at("records_per_shard"), "records_per_shard");
    m.class_names = j.at("class_names").get<std::vector<std::string>>();
    m.class_counts = integers(j.at("class_counts"), "class_counts");
    m.pixel_sum = counts(j.at("pixel_sum"), "pixel_sum");
    m.pixel_sum_squares = counts(j.at("pixel_sum_squares"), "pixel_sum_squares");
    m.mean = j.at("mean").get<std::vector<double>>();
    m.std = j.at("std").get<std::vector<double>>();
    for (const auto& s : j.at("shards")) {
      ShardEntry e;
      e.path = s.at("path").get<std::string>();
      e.first_index = integer(s.at("first_index"), "first_index");
      e.count = integer(s.at("count"), "count");
      e.bytes = integer(s.at("bytes"), "bytes");
      e.crc32 = parse_crc32_hex(s.at("crc32").get<std::string>(), "manifest " + path);
      m.shards.push_back(e);
    }
  } catch (const json::exception& e) {
    CTMQ_FAIL("manifest " << path << ": missing or malformed field (" << e.what()
                          << "); rebuild it with ctmq-shard");
  }
  // fits_in_a_record first: pixels() of three arbitrary sizes may overflow.
  const auto c = static_cast<size_t>(m.shape.channels);
  CTMQ_CHECK(fits_in_a_record(m.shape) && m.mean.size() == c && m.std.size() == c,
             "manifest " << path << ": shape or per-channel mean/std are inconsistent");
  CTMQ_CHECK(!m.class_names.empty(), "manifest " << path << ": no class names");
  // Every shard's size in bytes must be representable (ShardDataset checks it).
  const int64_t max_records =
      (INT64_MAX - kShardHeaderSize) /
      (m.record == RecordKind::kEncoded ? kEncodedRecordOverhead + 1 + 8 : record_size(m.shape));
  int64_t next = 0;
  for (const auto& s : m.shards) {
    check_path_inside(s.path, path);
    CTMQ_CHECK(s.first_index == next && s.count > 0 && s.count <= max_records - next,
               "manifest " << path << ": shard " << s.path << " starts at record " << s.first_index
                           << " and holds " << s.count << ", expected a start at " << next
                           << " and 1 to " << max_records - next
                           << " records; the manifest is inconsistent");
    next += s.count;
  }
  CTMQ_CHECK(next == m.count, "manifest " << path << ": shards hold " << next
                                          << " records but count is " << m.count);
  return m;
}

Manifest load_manifest(const std::string& path) {
  CTMQ_CHECK(std::filesystem::exists(path),
             "manifest " << path
                         << " does not exist; build the data set with ctmq-shard "
                            "(see data-prep/)");
  return parse_manifest(read_file(path), path);
}

}  // namespace ctmq::data
