#include "ctmq/deploy/packed_format.h"

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "ctmq/common/atomic_file.h"
#include "ctmq/common/byte_coding.h"
#include "ctmq/common/error.h"
#include "ctmq/common/json_integer.h"
#include "ctmq/common/sealed_file.h"
#include "ctmq/quant/quant_options.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "packed files store tensors little-endian; this host is not");

namespace ctmq::deploy {
namespace {

constexpr SealKind kPackedSeal{"packed model file", "CTMQPACK"};
constexpr size_t kAlignment = 64;

size_t aligned(size_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

std::string coding_name(InputCoding coding) {
  return coding == InputCoding::kSigned ? "signed" : "unsigned";
}

int64_t element_count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Appends `bytes` at the next 64-byte boundary of `data`; returns the offset.
size_t append_aligned(std::string& data, const void* bytes, size_t size) {
  data.resize(aligned(data.size()), '\0');
  const size_t offset = data.size();
  data.append(static_cast<const char*>(bytes), size);
  return offset;
}

template <typename T>
T field(const nlohmann::json& j, const char* key, const std::string& path) {
  CTMQ_CHECK(j.is_object() && j.contains(key), "packed model file "
                                                   << path << ": header has no \"" << key
                                                   << "\"; re-export it with ctmq-export");
  const nlohmann::json& v = j.at(key);
  auto wrong_type = [&] {
    CTMQ_FAIL("packed model file " << path << ": header field \"" << key << "\" is "
                                   << v.dump().substr(0, 40) << ", not of the expected type");
  };
  if constexpr (std::is_integral_v<T>) {
    const std::optional<T> x = json_integer<T>(v);
    if (!x) wrong_type();
    return *x;
  } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    const std::optional<T> x = json_integers<int64_t>(v);
    if (!x) wrong_type();
    return *x;
  } else {
    try {
      return v.get<T>();
    } catch (const nlohmann::json::exception&) {
      wrong_type();
    }
  }
  return T{};  // not reached: wrong_type throws
}

}  // namespace

std::string encode_packed(const PackedModel& model) {
  const model::ModelOptions& o = model.options;
  nlohmann::json header;
  header["format"] = "ctmq-packed";
  header["version"] = kPackedFormatVersion;
  header["ctmq_version"] = model.ctmq_version;
  header["source"] = model.source;
  header["architecture"] = model::architecture_name(o.architecture);
  header["width"] = o.width;
  header["num_classes"] = o.num_classes;
  header["in_channels"] = o.in_channels;
  header["bits"] = {{"weight", 1}, {"activation", 1}};
  header["input_coding"] = coding_name(model.input_coding);
  header["activation_quantizer"] = quant::activation_quantizer_name(o.quant.activation);
  header["input_mean"] = o.preprocessing.mean;
  header["input_std"] = o.preprocessing.std_dev;
  std::string data;
  nlohmann::json tensors = nlohmann::json::object();
  for (const auto& [name, t] : model.floats) {
    CTMQ_ASSERT(t.scalar_type() == torch::kFloat && t.is_contiguous() && t.device().is_cpu());
    const size_t bytes = static_cast<size_t>(t.numel()) * sizeof(float);
    const size_t offset = append_aligned(data, t.data_ptr<float>(), bytes);
    tensors[name] = {
        {"dtype", "float32"}, {"shape", t.sizes().vec()}, {"offset", offset}, {"bytes", bytes}};
  }
  for (const auto& [name, b] : model.bits) {
    CTMQ_ASSERT(element_count(b.shape) == static_cast<int64_t>(b.words.size()));
    CTMQ_ASSERT(!model.floats.count(name));
    const size_t bytes = b.words.size() * sizeof(uint64_t);
    const size_t offset = append_aligned(data, b.words.data(), bytes);
    tensors[name] = {{"dtype", "uint64"}, {"shape", b.shape}, {"offset", offset}, {"bytes", bytes}};
  }
  header["tensors"] = tensors;
  // data_offset depends on the header's length, which depends on data_offset:
  // fix its width by trying until it is stable (at most twice).
  size_t data_offset = 0;
  std::string text;
  for (int i = 0; i < 3; ++i) {
    header["data_offset"] = data_offset;
    text = header.dump();
    const size_t needed = aligned(8 + text.size());
    if (needed == data_offset) break;
    data_offset = needed;
  }
  header["data_offset"] = data_offset;
  text = header.dump();
  CTMQ_ASSERT(aligned(8 + text.size()) == data_offset);
  std::string out;
  const uint64_t header_size = text.size();
  append_le64(out, header_size);
  out += text;
  out.resize(data_offset, '\0');
  out += data;
  return seal(std::move(out), kPackedSeal, kPackedFormatVersion);
}

PackedModel decode_packed(const std::string& bytes, const std::string& path) {
  // Another ctmq file given by mistake (a network file, a checkpoint) says so.
  if (bytes.size() >= kSealBytes && !has_seal(bytes, kPackedSeal) &&
      bytes.compare(bytes.size() - kSealBytes, 4, "CTMQ") == 0) {
    CTMQ_FAIL("packed model file " << path << " is another kind of ctmq file (magic "
                                   << bytes.substr(bytes.size() - kSealBytes, 8)
                                   << "); make a packed model from a W1A1 stage with "
                                      "ctmq-export --format packed");
  }
  const Unsealed sealed = unseal(bytes, kPackedSeal, path, 1, kPackedFormatVersion);
  const size_t n = sealed.payload_size;
  const std::string where = "packed model file " + path;
  CTMQ_CHECK(n >= 8, where << " is too short for a header; re-export it with ctmq-export");
  const uint64_t header_size = decode_le64(bytes.data());
  CTMQ_CHECK(header_size <= n - 8, where << ": header size " << header_size << " exceeds the file");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + header_size);
  } catch (const nlohmann::json::exception& e) {
    CTMQ_FAIL(where << ": header is not valid JSON (" << e.what() << ")");
  }
  CTMQ_CHECK(header.is_object() && header.value("format", "") == "ctmq-packed",
             where << " is not a ctmq packed model (header \"format\" is not \"ctmq-packed\")");
  const auto version = field<uint32_t>(header, "version", path);
  CTMQ_CHECK(version == sealed.version, where << ": header version " << version
                                              << " differs from the footer's " << sealed.version);
  PackedModel model;
  model::ModelOptions& o = model.options;
  o.architecture = model::parse_architecture(field<std::string>(header, "architecture", path));
  o.width = field<int64_t>(header, "width", path);
  o.num_classes = field<int64_t>(header, "num_classes", path);
  o.in_channels = field<int64_t>(header, "in_channels", path);
  CTMQ_CHECK(o.width >= 1 && o.num_classes >= 1 && o.in_channels >= 1,
             where << ": width, num_classes and in_channels must be >= 1");
  const auto bits = header.value("bits", nlohmann::json());
  CTMQ_CHECK(bits == nlohmann::json({{"weight", 1}, {"activation", 1}}),
             where << ": bits " << bits.dump() << " are not W1A1, the only depths of version 1");
  const auto coding = field<std::string>(header, "input_coding", path);
  CTMQ_CHECK(coding == "signed" || coding == "unsigned",
             where << ": input_coding \"" << coding << "\" is not signed or unsigned");
  model.input_coding = coding == "signed" ? InputCoding::kSigned : InputCoding::kUnsigned;
  o.quant.activation =
      quant::parse_activation_quantizer(field<std::string>(header, "activation_quantizer", path));
  o.preprocessing.mean = field<std::vector<double>>(header, "input_mean", path);
  o.preprocessing.std_dev = field<std::vector<double>>(header, "input_std", path);
  CTMQ_CHECK(o.preprocessing.mean.size() == static_cast<size_t>(o.in_channels) &&
                 o.preprocessing.std_dev.size() == o.preprocessing.mean.size(),
             where << ": input_mean and input_std need " << o.in_channels << " values each");
  for (double s : o.preprocessing.std_dev)
    CTMQ_CHECK(s > 0, where << ": input_std values must be > 0");
  model.ctmq_version = field<std::string>(header, "ctmq_version", path);
  model.source = field<std::string>(header, "source", path);
  const auto data_offset = field<uint64_t>(header, "data_offset", path);
  CTMQ_CHECK(data_offset % kAlignment == 0 && data_offset >= 8 + header_size && data_offset <= n,
             where << ": data_offset " << data_offset << " is not a 64-byte boundary after the "
                   << "header inside the file");
  const auto tensors = header.value("tensors", nlohmann::json());
  CTMQ_CHECK(tensors.is_object(), where << ": header has no \"tensors\" object");
  for (const auto& [name, t] : tensors.items()) {
    const std::string tensor_where = where + ", tensor " + name;
    CTMQ_CHECK(t.is_object(), tensor_where << ": not an object");
    const auto dtype = field<std::string>(t, "dtype", path);
    const auto shape = field<std::vector<int64_t>>(t, "shape", path);
    const auto offset = field<uint64_t>(t, "offset", path);
    const auto size = field<uint64_t>(t, "bytes", path);
    int64_t count = 1;
    for (int64_t d : shape) {
      CTMQ_CHECK(d >= 0 && d <= (int64_t{1} << 32), tensor_where << ": bad shape dimension " << d);
      count *= d;
      CTMQ_CHECK(count <= (int64_t{1} << 40), tensor_where << ": shape too large");
    }
    CTMQ_CHECK(dtype == "float32" || dtype == "uint64",
               tensor_where << ": dtype \"" << dtype << "\" is not float32 or uint64");
    const uint64_t element = dtype == "float32" ? 4 : 8;
    CTMQ_CHECK(
        size == static_cast<uint64_t>(count) * element,
        tensor_where << ": " << size << " bytes for " << count << " " << dtype << " elements");
    CTMQ_CHECK(
        offset % kAlignment == 0 && offset <= n - data_offset && size <= n - data_offset - offset,
        tensor_where << ": bytes [" << offset << ", +" << size << ") lie outside the tensor data");
    const char* start = bytes.data() + data_offset + offset;
    if (dtype == "float32") {
      torch::Tensor values = torch::empty(shape, torch::kFloat);
      if (size > 0) std::memcpy(values.data_ptr<float>(), start, size);
      model.floats[name] = values;
    } else {
      BitTensor b;
      b.shape = shape;
      b.words.resize(static_cast<size_t>(count));
      if (size > 0) std::memcpy(b.words.data(), start, size);
      model.bits[name] = std::move(b);
    }
  }
  return model;
}

void write_packed(const PackedModel& model, const std::string& path) {
  write_file_atomically(path, encode_packed(model));
}

PackedModel read_packed(const std::string& path) {
  CTMQ_CHECK(std::filesystem::is_regular_file(path),
             "packed model file " << path
                                  << " does not exist; write one with ctmq-export --format packed");
  return decode_packed(read_file(path), path);
}

}  // namespace ctmq::deploy
