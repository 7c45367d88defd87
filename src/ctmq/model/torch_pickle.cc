#include "ctmq/model/torch_pickle.h"

#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include "ctmq/common/error.h"

namespace ctmq::model {
namespace {

struct PyObject;
using Obj = std::shared_ptr<PyObject>;

// The Python values a torch.save'd state dict contains.
struct PyObject {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kTuple,
    kList,
    kDict,
    kGlobal,
    kTensor,
    kStorage,
    kOpaque
  };
  Kind kind = Kind::kNone;
  int64_t integer = 0;
  double real = 0;
  std::string text;  // string value, global "module name", or storage key
  std::vector<Obj> items;
  std::vector<std::pair<Obj, Obj>> entries;
  torch::Tensor tensor;  // a tensor, or a storage's flat data
};

Obj make(PyObject::Kind kind) {
  auto o = std::make_shared<PyObject>();
  o->kind = kind;
  return o;
}

Obj make_int(int64_t v) {
  Obj o = make(PyObject::Kind::kInt);
  o->integer = v;
  return o;
}

Obj make_text(PyObject::Kind kind, std::string s) {
  Obj o = make(kind);
  o->text = std::move(s);
  return o;
}

torch::ScalarType storage_dtype(const std::string& global, const std::string& path) {
  static const std::map<std::string, torch::ScalarType> kTypes = {
      {"torch FloatStorage", torch::kFloat32}, {"torch DoubleStorage", torch::kFloat64},
      {"torch HalfStorage", torch::kFloat16},  {"torch BFloat16Storage", torch::kBFloat16},
      {"torch LongStorage", torch::kInt64},    {"torch IntStorage", torch::kInt32},
      {"torch ShortStorage", torch::kInt16},   {"torch CharStorage", torch::kInt8},
      {"torch ByteStorage", torch::kUInt8},    {"torch BoolStorage", torch::kBool}};
  auto it = kTypes.find(global);
  CTMQ_CHECK(it != kTypes.end(),
             "torch file " << path << ": storage type '" << global << "' is not supported");
  return it->second;
}

class Unpickler {
 public:
  Unpickler(caffe2::serialize::PyTorchStreamReader& zip, const std::string& path, const char* data,
            size_t size)
      : zip_(zip), path_(path), data_(data), size_(size) {}

  Obj run() {
    while (true) {
      const uint8_t op = byte();
      switch (op) {
        case 0x80:
          byte();
          break;  // PROTO
        case 0x95:
          bytes(8);
          break;  // FRAME
        case '}':
          push(make(PyObject::Kind::kDict));
          break;
        case ']':
          push(make(PyObject::Kind::kList));
          break;
        case ')':
          push(make(PyObject::Kind::kTuple));
          break;
        case 'N':
          push(make(PyObject::Kind::kNone));
          break;
        case 0x88:
        case 0x89: {  // NEWTRUE / NEWFALSE
          Obj o = make(PyObject::Kind::kBool);
          o->integer = op == 0x88;
          push(o);
          break;
        }
        case 'q':
          memo_[byte()] = top();
          break;  // BINPUT
        case 'r':
          memo_[uint32()] = top();
          break;  // LONG_BINPUT
        case 0x94:
          memo_[memo_.size()] = top();
          break;  // MEMOIZE
        case 'h':
          push(memo(byte()));
          break;  // BINGET
        case 'j':
          push(memo(uint32()));
          break;  // LONG_BINGET
        case '(':
          marks_.push_back(stack_.size());
          break;  // MARK
        case 'X':
          push(make_text(PyObject::Kind::kString, bytes(uint32())));
          break;
        case 0x8c:
          push(make_text(PyObject::Kind::kString, bytes(byte())));
          break;
        case 'T':
          push(make_text(PyObject::Kind::kString, bytes(uint32())));
          break;
        case 'U':
          push(make_text(PyObject::Kind::kString, bytes(byte())));
          break;
        case 'c': {  // GLOBAL module\nname\n
          std::string module = line();
          push(make_text(PyObject::Kind::kGlobal, module + " " + line()));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          Obj name = pop();
          Obj module = pop();
          push(make_text(PyObject::Kind::kGlobal, module->text + " " + name->text));
          break;
        }
        case 'K':
          push(make_int(byte()));
          break;
        case 'M':
          push(make_int(uint16()));
          break;
        case 'J':
          push(make_int(static_cast<int32_t>(uint32())));
          break;
        case 0x8a:
          push(make_int(long1()));
          break;
        case 'G': {
          Obj o = make(PyObject::Kind::kFloat);
          o->real = binfloat();
          push(o);
          break;
        }
        case 't': {
          Obj t = make(PyObject::Kind::kTuple);
          t->items = pop_to_mark();
          push(t);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          Obj t = make(PyObject::Kind::kTuple);
          t->items.resize(op - 0x84);
          for (size_t i = t->items.size(); i-- > 0;) t->items[i] = pop();
          push(t);
          break;
        }
        case 'Q':
          push(persistent_load(pop()));
          break;     // BINPERSID
        case 'R': {  // REDUCE
          Obj args = pop();
          Obj callable = pop();
          push(reduce(callable, args));
          break;
        }
        case 's': {  // SETITEM
          Obj value = pop();
          Obj key = pop();
          top()->entries.emplace_back(key, value);
          break;
        }
        case 'u': {  // SETITEMS
          std::vector<Obj> kv = pop_to_mark();
          for (size_t i = 0; i + 1 < kv.size(); i += 2)
            top()->entries.emplace_back(kv[i], kv[i + 1]);
          break;
        }
        case 'a': {  // APPEND
          Obj v = pop();
          top()->items.push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          std::vector<Obj> vs = pop_to_mark();
          for (auto& v : vs) top()->items.push_back(v);
          break;
        }
        case 'b':
          pop();
          break;  // BUILD: state (e.g. OrderedDict._metadata) is not needed
        case '.':
          return pop();  // STOP
        default:
          CTMQ_FAIL("torch file " << path_ << ": pickle opcode 0x" << std::hex
                                  << static_cast<int>(op) << " at byte " << std::dec << pos_ - 1
                                  << " is not supported; save a plain dict of tensors with "
                                     "torch.save(dict(model.state_dict()), path)");
      }
    }
  }

 private:
  void need(size_t n) {
    CTMQ_CHECK(pos_ + n <= size_, "torch file " << path_ << ": data.pkl ends early at byte " << pos_
                                                << "; the file is truncated or corrupt");
  }
  uint8_t byte() {
    need(1);
    return static_cast<uint8_t>(data_[pos_++]);
  }
  std::string bytes(size_t n) {
    need(n);
    std::string s(data_ + pos_, n);
    pos_ += n;
    return s;
  }
  uint32_t uint32() {
    const std::string b = bytes(4);
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[i]);
    return v;
  }
  uint16_t uint16() {
    const std::string b = bytes(2);
    return static_cast<uint16_t>(static_cast<uint8_t>(b[0]) | (static_cast<uint8_t>(b[1]) << 8));
  }
  int64_t long1() {
    const size_t n = byte();
    CTMQ_CHECK(n <= 8, "torch file " << path_ << ": integer of " << n << " bytes is too large");
    const std::string b = bytes(n);
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | static_cast<uint8_t>(b[i]);
    if (n > 0 && n < 8 && (static_cast<uint8_t>(b[n - 1]) & 0x80)) v |= ~uint64_t{0} << (8 * n);
    return static_cast<int64_t>(v);
  }
  double binfloat() {
    const std::string b = bytes(8);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(b[i]);
    double d;
    std::memcpy(&d, &v, sizeof d);
    return d;
  }
  std::string line() {
    std::string s;
    for (char c = static_cast<char>(byte()); c != '\n'; c = static_cast<char>(byte())) s += c;
    return s;
  }
  void push(Obj o) { stack_.push_back(std::move(o)); }
  Obj pop() {
    CTMQ_CHECK(!stack_.empty(), "torch file " << path_ << ": corrupt pickle (stack underflow)");
    Obj o = stack_.back();
    stack_.pop_back();
    return o;
  }
  Obj& top() {
    CTMQ_CHECK(!stack_.empty(), "torch file " << path_ << ": corrupt pickle (empty stack)");
    return stack_.back();
  }
  Obj memo(size_t key) {
    auto it = memo_.find(key);
    CTMQ_CHECK(it != memo_.end(),
               "torch file " << path_ << ": corrupt pickle (memo " << key << ")");
    return it->second;
  }
  std::vector<Obj> pop_to_mark() {
    CTMQ_CHECK(!marks_.empty(), "torch file " << path_ << ": corrupt pickle (no mark)");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Obj> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }

  // ('storage', storage type, key, location, numel) -> the storage's flat data.
  Obj persistent_load(const Obj& pid) {
    CTMQ_CHECK(pid->kind == PyObject::Kind::kTuple && pid->items.size() >= 5 &&
                   pid->items[0]->text == "storage",
               "torch file " << path_ << ": unsupported persistent id");
    const std::string key = pid->items[2]->text;
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    const torch::ScalarType dtype = storage_dtype(pid->items[1]->text, path_);
    const int64_t numel = pid->items[4]->integer;
    const std::string record = "data/" + key;
    CTMQ_CHECK(zip_.hasRecord(record), "torch file " << path_ << ": record " << record
                                                     << " is missing; the file is corrupt");
    auto [data, size] = zip_.getRecord(record);
    const size_t needed = static_cast<size_t>(numel) * c10::elementSize(dtype);
    CTMQ_CHECK(size >= needed, "torch file " << path_ << ": record " << record << " holds " << size
                                             << " bytes; expected " << needed);
    Obj storage = make_text(PyObject::Kind::kStorage, key);
    storage->tensor =
        torch::from_blob(data.get(), {numel}, torch::TensorOptions().dtype(dtype)).clone();
    storages_[key] = storage;
    return storage;
  }

  std::vector<int64_t> ints(const Obj& tuple) {
    std::vector<int64_t> v;
    for (const Obj& o : tuple->items) v.push_back(o->integer);
    return v;
  }

  Obj reduce(const Obj& callable, const Obj& args) {
    const std::string& name = callable->text;
    if (name == "collections OrderedDict") return make(PyObject::Kind::kDict);
    if (name == "torch._utils _rebuild_tensor_v2" || name == "torch._utils _rebuild_tensor") {
      CTMQ_CHECK(args->items.size() >= 4 && args->items[0]->kind == PyObject::Kind::kStorage,
                 "torch file " << path_ << ": malformed tensor record");
      Obj t = make(PyObject::Kind::kTensor);
      t->tensor = args->items[0]->tensor.as_strided(ints(args->items[2]), ints(args->items[3]),
                                                    args->items[1]->integer);
      return t;
    }
    if (name == "torch._utils _rebuild_parameter") return args->items.at(0);
    Obj opaque = make_text(PyObject::Kind::kOpaque, name);
    return opaque;
  }

  caffe2::serialize::PyTorchStreamReader& zip_;
  const std::string& path_;
  const char* data_;
  size_t size_;
  size_t pos_ = 0;
  std::vector<Obj> stack_;
  std::vector<size_t> marks_;
  std::map<size_t, Obj> memo_;
  std::map<std::string, Obj> storages_;
};

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> read_torch_saved_tensors(
    const std::string& path) {
  CTMQ_CHECK(std::filesystem::exists(path), "torch file " << path << " does not exist");
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip;
  try {
    zip = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error& e) {
    CTMQ_FAIL("torch file " << path << " is not a zip-format torch.save file (or is truncated): "
                            << std::string(e.what()).substr(0, std::string(e.what()).find('\n'))
                            << "; re-save it from PyTorch >= 1.6 with torch.save(sd, path)");
  }
  Obj root;
  try {
    CTMQ_CHECK(zip->hasRecord("data.pkl"), "torch file " << path << " has no data.pkl record");
    auto [data, size] = zip->getRecord("data.pkl");
    Unpickler unpickler(*zip, path, static_cast<const char*>(data.get()), size);
    root = unpickler.run();
  } catch (const c10::Error& e) {
    CTMQ_FAIL("torch file " << path << " is corrupt: "
                            << std::string(e.what()).substr(0, std::string(e.what()).find('\n')));
  }
  CTMQ_CHECK(root && root->kind == PyObject::Kind::kDict,
             "torch file " << path << " does not hold a dict of tensors (a state_dict)");
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [key, value] : root->entries) {
    if (key->kind == PyObject::Kind::kString && value->kind == PyObject::Kind::kTensor) {
      tensors.emplace_back(key->text, value->tensor);
    }
  }
  return tensors;
}

}  // namespace ctmq::model
