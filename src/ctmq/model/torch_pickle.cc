#include "ctmq/model/torch_pickle.h"

#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include "ctmq/common/byte_coding.h"
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
  Obj metadata;          // a dict's `_metadata` attribute (set by BUILD)
};

// Records every PyObject made while it is alive; its destructor empties the
// containers still alive then, so that a pickle whose list or dict contains
// itself (a shared_ptr cycle; found by fuzz/torch_pickle_fuzz.cc) frees them.
// Declare it before any Obj of the same scope.
class ObjectArena {
 public:
  ObjectArena() : previous_(current_) { current_ = this; }
  ~ObjectArena() {
    for (const auto& made : made_) {
      if (Obj o = made.lock()) {
        o->items.clear();
        o->entries.clear();
        o->metadata.reset();
      }
    }
    current_ = previous_;
  }
  ObjectArena(const ObjectArena&) = delete;
  ObjectArena& operator=(const ObjectArena&) = delete;
  static void record(const Obj& o) {
    if (current_) current_->made_.push_back(o);
  }

 private:
  static thread_local ObjectArena* current_;
  ObjectArena* previous_;
  std::vector<std::weak_ptr<PyObject>> made_;
};
thread_local ObjectArena* ObjectArena::current_ = nullptr;

Obj make(PyObject::Kind kind) {
  auto o = std::make_shared<PyObject>();
  o->kind = kind;
  ObjectArena::record(o);
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

bool is(const Obj& o, PyObject::Kind kind) { return o && o->kind == kind; }

// "torch FloatStorage"; "torch.cuda FloatStorage" in files saved from a GPU by
// PyTorch < 1.12 (the data is read onto the CPU, as torch.load's map_location does).
torch::ScalarType storage_dtype(const std::string& global, const std::string& path) {
  static const std::map<std::string, torch::ScalarType> kTypes = {
      {"FloatStorage", torch::kFloat32}, {"DoubleStorage", torch::kFloat64},
      {"HalfStorage", torch::kFloat16},  {"BFloat16Storage", torch::kBFloat16},
      {"LongStorage", torch::kInt64},    {"IntStorage", torch::kInt32},
      {"ShortStorage", torch::kInt16},   {"CharStorage", torch::kInt8},
      {"ByteStorage", torch::kUInt8},    {"BoolStorage", torch::kBool}};
  std::string name = global;
  for (const char* module : {"torch ", "torch.cuda "}) {
    if (global.rfind(module, 0) == 0) name = global.substr(std::strlen(module));
  }
  auto it = kTypes.find(name);
  CTMQ_CHECK(name != global && it != kTypes.end(),
             "torch file " << path << ": storage type '" << global << "' is not supported");
  return it->second;
}

// Turns a persistent id (a tuple) into a storage object.
using PersistentLoad = std::function<Obj(const Obj& pid)>;

// One pickle of `data`, from byte `pos` to its STOP opcode.
class Unpickler {
 public:
  Unpickler(const std::string& path, const char* data, size_t size, size_t pos,
            PersistentLoad persistent_load)
      : path_(path),
        data_(data),
        size_(size),
        pos_(pos),
        persistent_load_(std::move(persistent_load)) {}

  // The byte after the STOP opcode, once run() has returned.
  size_t position() const { return pos_; }

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
          push(persistent(pop()));
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
          build(pop());
          break;  // BUILD
        case '.':
          return pop();  // STOP
        default:
          CTMQ_FAIL("torch file " << path_ << ": pickle opcode 0x" << std::hex
                                  << static_cast<int>(op) << " at byte " << std::dec << pos_ - 1
                                  << " is not supported; save a plain dict of tensors with "
                                     "torch.save(dict(model.state_dict()), path) (default "
                                     "pickle_protocol)");
      }
    }
  }

 private:
  void need(size_t n) {
    CTMQ_CHECK(pos_ + n <= size_, "torch file " << path_ << ": a pickle ends early at byte " << pos_
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
  uint32_t uint32() { return decode_le32(bytes(4).data()); }
  uint16_t uint16() { return decode_le16(bytes(2).data()); }
  int64_t long1() {
    const size_t n = byte();
    CTMQ_CHECK(n <= 8, "torch file " << path_ << ": integer of " << n << " bytes is too large");
    const std::string b = bytes(n);
    uint64_t v = decode_le(b.data(), n);
    if (n > 0 && n < 8 && (static_cast<uint8_t>(b[n - 1]) & 0x80)) v |= ~uint64_t{0} << (8 * n);
    return static_cast<int64_t>(v);
  }
  double binfloat() {
    const uint64_t v = decode_be64(bytes(8).data());  // BINFLOAT: big-endian IEEE 754
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
    CTMQ_CHECK(mark <= stack_.size(), "torch file " << path_ << ": corrupt pickle (mark)");
    std::vector<Obj> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  Obj persistent(const Obj& pid) {
    CTMQ_CHECK(persistent_load_, "torch file " << path_ << ": unexpected persistent id");
    return persistent_load_(pid);
  }

  // BUILD on a dict: OrderedDict's state is {'_metadata': ...} (a state_dict's
  // per-module versions); other state is not needed.
  void build(const Obj& state) {
    Obj dict = is(state, PyObject::Kind::kTuple) && !state->items.empty() ? state->items[0] : state;
    if (!is(top(), PyObject::Kind::kDict) || !is(dict, PyObject::Kind::kDict)) return;
    for (const auto& [key, value] : dict->entries) {
      if (is(key, PyObject::Kind::kString) && key->text == "_metadata") top()->metadata = value;
    }
  }

  std::vector<int64_t> ints(const Obj& tuple) {
    CTMQ_CHECK(is(tuple, PyObject::Kind::kTuple),
               "torch file " << path_ << ": malformed tensor record");
    std::vector<int64_t> v;
    for (const Obj& o : tuple->items) v.push_back(o->integer);
    return v;
  }

  Obj reduce(const Obj& callable, const Obj& args) {
    const std::string& name = callable->text;
    CTMQ_CHECK(is(args, PyObject::Kind::kTuple),
               "torch file " << path_ << ": corrupt pickle (" << name << " without arguments)");
    if (name == "collections OrderedDict") {
      Obj dict = make(PyObject::Kind::kDict);
      // Python 2 pickled OrderedDict(items) with items a list of [key, value].
      if (args->items.size() == 1 && is(args->items[0], PyObject::Kind::kList)) {
        for (const Obj& pair : args->items[0]->items) {
          if (pair->items.size() == 2) dict->entries.emplace_back(pair->items[0], pair->items[1]);
        }
      }
      return dict;
    }
    if (name == "torch._utils _rebuild_tensor_v2" || name == "torch._utils _rebuild_tensor") {
      CTMQ_CHECK(args->items.size() >= 4 && is(args->items[0], PyObject::Kind::kStorage),
                 "torch file " << path_ << ": malformed tensor record");
      Obj t = make(PyObject::Kind::kTensor);
      t->tensor = args->items[0]->tensor.as_strided(ints(args->items[2]), ints(args->items[3]),
                                                    args->items[1]->integer);
      return t;
    }
    if (name == "torch._utils _rebuild_parameter" ||
        name == "torch._utils _rebuild_parameter_with_state") {
      CTMQ_CHECK(!args->items.empty(), "torch file " << path_ << ": malformed parameter record");
      return args->items[0];
    }
    // A tensor subclass or a tensor with Python attributes: (func, type, args, state).
    if (name == "torch._tensor _rebuild_from_type_v2" ||
        name == "torch._tensor _rebuild_from_type") {
      CTMQ_CHECK(args->items.size() >= 3 && is(args->items[0], PyObject::Kind::kGlobal),
                 "torch file " << path_ << ": malformed tensor record");
      return reduce(args->items[0], args->items[2]);
    }
    return make_text(PyObject::Kind::kOpaque, name);
  }

  const std::string& path_;
  const char* data_;
  size_t size_;
  size_t pos_;
  PersistentLoad persistent_load_;
  std::vector<Obj> stack_;
  std::vector<size_t> marks_;
  std::map<size_t, Obj> memo_;
};

void check_storage_pid(const Obj& pid, size_t min_items, const std::string& path) {
  CTMQ_CHECK(is(pid, PyObject::Kind::kTuple) && pid->items.size() >= min_items &&
                 is(pid->items[0], PyObject::Kind::kString) && pid->items[0]->text == "storage" &&
                 is(pid->items[1], PyObject::Kind::kGlobal) &&
                 is(pid->items[2], PyObject::Kind::kString) &&
                 is(pid->items[4], PyObject::Kind::kInt) && pid->items[4]->integer >= 0,
             "torch file " << path << ": unsupported persistent id (not a tensor storage)");
}

std::string first_line(const std::exception& e) {
  const std::string what = e.what();
  return what.substr(0, what.find('\n'));
}

// Zip format: ('storage', storage type, key, location, numel) -> record data/KEY.
Obj read_zip_root(const std::string& path) {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip;
  try {
    zip = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error& e) {
    CTMQ_FAIL("torch file " << path << " is a truncated or corrupt zip archive: " << first_line(e));
  }
  if (zip->hasRecord("byteorder")) {
    auto [data, size] = zip->getRecord("byteorder");
    const std::string order(static_cast<const char*>(data.get()), size);
    CTMQ_CHECK(order == "little", "torch file " << path << " was saved on a " << order
                                                << "-endian machine; re-save it on a "
                                                   "little-endian one");
  }
  CTMQ_CHECK(zip->hasRecord("data.pkl"),
             "torch file " << path
                           << " has no data.pkl record (is it a TorchScript archive? "
                              "ctmq reads torch.save files only)");
  std::map<std::string, Obj> storages;
  auto load = [&](const Obj& pid) {
    check_storage_pid(pid, 5, path);
    const std::string key = pid->items[2]->text;
    auto cached = storages.find(key);
    if (cached != storages.end()) return cached->second;
    const torch::ScalarType dtype = storage_dtype(pid->items[1]->text, path);
    const int64_t numel = pid->items[4]->integer;
    const std::string record = "data/" + key;
    CTMQ_CHECK(zip->hasRecord(record), "torch file " << path << ": record " << record
                                                     << " is missing; the file is corrupt");
    auto [data, size] = zip->getRecord(record);
    const size_t needed = static_cast<size_t>(numel) * c10::elementSize(dtype);
    CTMQ_CHECK(size >= needed, "torch file " << path << ": record " << record << " holds " << size
                                             << " bytes; expected " << needed);
    Obj storage = make_text(PyObject::Kind::kStorage, key);
    storage->tensor =
        torch::from_blob(data.get(), {numel}, torch::TensorOptions().dtype(dtype)).clone();
    storages[key] = storage;
    return storage;
  };
  auto [data, size] = zip->getRecord("data.pkl");
  return Unpickler(path, static_cast<const char*>(data.get()), size, 0, load).run();
}

// torch.save's legacy MAGIC_NUMBER 0x1950a86a20f9469cfc6c pickled at protocol
// 2: PROTO 2, LONG1 of 10 bytes, STOP.
constexpr char kLegacyMagic[] = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e";
constexpr size_t kLegacyMagicSize = sizeof(kLegacyMagic) - 1;
constexpr int64_t kLegacyProtocolVersion = 1001;

// Legacy format (see torch_pickle.h). Storages are allocated while the main
// pickle is read and filled from the bytes that follow it, as torch.load does.
Obj read_legacy_root(const std::string& path, const std::string& file) {
  const char* data = file.data();
  const size_t size = file.size();
  Unpickler protocol(path, data, size, kLegacyMagicSize, nullptr);
  const Obj version = protocol.run();
  CTMQ_CHECK(is(version, PyObject::Kind::kInt) && version->integer == kLegacyProtocolVersion,
             "torch file " << path << ": legacy protocol version is not " << kLegacyProtocolVersion
                           << "; the file is corrupt");
  Unpickler sys_info_reader(path, data, size, protocol.position(), nullptr);
  const Obj sys_info = sys_info_reader.run();
  CTMQ_CHECK(is(sys_info, PyObject::Kind::kDict),
             "torch file " << path << ": corrupt legacy header (sys_info is not a dict)");
  for (const auto& [key, value] : sys_info->entries) {
    CTMQ_CHECK(key->text != "little_endian" || value->integer == 1,
               "torch file " << path
                             << " was saved on a big-endian machine; re-save it on a "
                                "little-endian one");
  }

  std::map<std::string, Obj> storages;  // root key -> storage (its data comes later)
  std::map<std::string, Obj> views;     // view key -> part of a root storage
  auto load = [&](const Obj& pid) -> Obj {
    if (is(pid, PyObject::Kind::kTuple) && !pid->items.empty() && pid->items[0]->text == "module") {
      return make_text(PyObject::Kind::kOpaque, "module");  // a pickled nn.Module class
    }
    check_storage_pid(pid, 6, path);
    const torch::ScalarType dtype = storage_dtype(pid->items[1]->text, path);
    const std::string key = pid->items[2]->text;
    Obj& storage = storages[key];
    if (!storage) {
      storage = make_text(PyObject::Kind::kStorage, key);
      storage->tensor = torch::zeros({pid->items[4]->integer}, torch::TensorOptions().dtype(dtype));
    }
    const Obj& view = pid->items[5];
    if (is(view, PyObject::Kind::kNone)) return storage;
    CTMQ_CHECK(is(view, PyObject::Kind::kTuple) && view->items.size() == 3,
               "torch file " << path << ": malformed storage view");
    Obj& part = views[view->items[0]->text];
    if (!part) {
      const int64_t offset = view->items[1]->integer;
      const int64_t length = view->items[2]->integer;
      CTMQ_CHECK(offset >= 0 && length >= 0 && offset + length <= storage->tensor.numel(),
                 "torch file " << path << ": storage view out of range; the file is corrupt");
      part = make_text(PyObject::Kind::kStorage, view->items[0]->text);
      part->tensor = storage->tensor.narrow(0, offset, length);
    }
    return part;
  };
  Unpickler main(path, data, size, sys_info_reader.position(), load);
  const Obj root = main.run();
  Unpickler key_reader(path, data, size, main.position(), nullptr);
  const Obj keys = key_reader.run();
  CTMQ_CHECK(is(keys, PyObject::Kind::kList),
             "torch file " << path << ": corrupt legacy file (no storage key list)");
  size_t pos = key_reader.position();
  for (const Obj& key : keys->items) {
    auto it = storages.find(key->text);
    CTMQ_CHECK(it != storages.end(), "torch file " << path << ": storage '" << key->text
                                                   << "' is listed but never used; corrupt file");
    torch::Tensor& storage = it->second->tensor;
    CTMQ_CHECK(pos + 8 <= size, "torch file " << path << " ends early at byte " << pos
                                              << " (storage '" << key->text << "')");
    const auto count = static_cast<int64_t>(decode_le64(data + pos));
    pos += 8;
    CTMQ_CHECK(count == storage.numel(), "torch file " << path << ": storage '" << key->text
                                                       << "' holds " << count
                                                       << " elements; its tensors need "
                                                       << storage.numel() << "; corrupt file");
    const size_t bytes = static_cast<size_t>(count) * storage.element_size();
    CTMQ_CHECK(bytes <= size - pos, "torch file " << path << " ends early at byte " << pos
                                                  << " (storage '" << key->text << "' needs "
                                                  << bytes << " bytes); truncated file");
    std::memcpy(storage.data_ptr(), data + pos, bytes);
    pos += bytes;
  }
  return root;
}

// Keeps the string keys, tensors, dicts (down to `depth` levels) and `_metadata`.
void convert(const PyObject& dict, TorchSavedDict& out, int depth) {
  for (const auto& [key, value] : dict.entries) {
    if (!is(key, PyObject::Kind::kString)) continue;
    out.keys.push_back(key->text);
    if (is(value, PyObject::Kind::kTensor)) {
      out.tensors.emplace_back(key->text, value->tensor);
    } else if (is(value, PyObject::Kind::kDict) && depth > 0) {
      auto nested = std::make_shared<TorchSavedDict>();
      convert(*value, *nested, depth - 1);
      out.dicts.emplace_back(key->text, std::move(nested));
    }
  }
  if (!is(dict.metadata, PyObject::Kind::kDict)) return;
  out.has_metadata = true;
  for (const auto& [module, fields] : dict.metadata->entries) {
    if (!is(module, PyObject::Kind::kString) || !is(fields, PyObject::Kind::kDict)) continue;
    for (const auto& [field, value] : fields->entries) {
      if (is(field, PyObject::Kind::kString) && field->text == "version" &&
          is(value, PyObject::Kind::kInt)) {
        out.module_versions[module->text] = value->integer;
      }
    }
  }
}

}  // namespace

std::string torch_file_format_name(TorchFileFormat format) {
  return format == TorchFileFormat::kZip ? "zip" : "legacy";
}

TorchSavedFile read_torch_saved_file(const std::string& path) {
  CTMQ_CHECK(std::filesystem::is_regular_file(path), "torch file " << path << " does not exist");
  std::ifstream in(path, std::ios::binary);
  CTMQ_CHECK(in, "torch file " << path << " cannot be opened");
  std::string head(512, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));

  TorchSavedFile file;
  const ObjectArena arena;  // outlives root and every object the pickles make
  Obj root;
  try {
    if (head.rfind("PK\x03\x04", 0) == 0) {
      file.format = TorchFileFormat::kZip;
      in.close();
      root = read_zip_root(path);
    } else if (head.compare(0, kLegacyMagicSize, kLegacyMagic) == 0) {
      file.format = TorchFileFormat::kLegacy;
      in.seekg(0);
      const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      root = read_legacy_root(path, bytes);
    } else if (head.size() == 512 && head.compare(257, 5, "ustar") == 0) {
      CTMQ_FAIL("torch file " << path
                              << " is in the tar format of PyTorch < 0.1.10, which ctmq does not "
                                 "read; load it with an old PyTorch and re-save it: "
                                 "torch.save(torch.load(path), new_path)");
    } else {
      CTMQ_FAIL("torch file " << path
                              << " is not a torch.save file (neither the zip format of PyTorch "
                                 ">= 1.6 nor the legacy format; is it truncated?)");
    }
  } catch (const c10::Error& e) {
    CTMQ_FAIL("torch file " << path << " is corrupt: " << first_line(e));
  }
  CTMQ_CHECK(is(root, PyObject::Kind::kDict),
             "torch file " << path << " does not hold a dict of tensors (a state_dict)");
  constexpr int kMaxDepth = 4;
  convert(*root, file.root, kMaxDepth);
  return file;
}

std::vector<std::pair<std::string, torch::Tensor>> read_torch_saved_tensors(
    const std::string& path) {
  return read_torch_saved_file(path).root.tensors;
}

}  // namespace ctmq::model
