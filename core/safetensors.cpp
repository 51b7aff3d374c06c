// core/safetensors.cpp: validated, memory-mapped reading and atomic writing of safetensors files.
#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"

namespace sanf {

namespace {
constexpr int64_t kMaxHeader = 100 << 20;  // 100 MiB, as the reference implementation

bool dtype_from_safetensors(const std::string& s, DType& dt) {
  static const std::map<std::string, DType> known = {{"F32", DType::F32}, {"F64", DType::F64}, {"BF16", DType::BF16},
                                                       {"F16", DType::F16}, {"I64", DType::I64}, {"U8", DType::U8}};
  auto it = known.find(s);
  if (it == known.end()) return false;
  dt = it->second;
  return true;
}
}  // namespace

const char* safetensors_dtype_name(DType dt) {
  switch (dt) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
  }
  return "?";
}

void parse_safetensors_header(const std::string& path, const char* header, size_t header_size, int64_t data_size,
                              std::map<std::string, std::string>& metadata, std::vector<TensorEntry>& entries) {
  using nlohmann::json;
  json j = json::parse(header, header + header_size, nullptr, /*allow_exceptions=*/false);
  SANF_CHECK(!j.is_discarded(), path, ": the safetensors header is not valid JSON");
  SANF_CHECK(j.is_object(), path, ": the safetensors header is not a JSON object");
  metadata.clear();
  entries.clear();
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      SANF_CHECK(v.is_object(), path, ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        SANF_CHECK(m.value().is_string(), path, ": __metadata__ value of '", m.key(), "' is not a string");
        metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    SANF_CHECK(v.is_object(), path, ": tensor '", name, "': entry is not an object");
    SANF_CHECK(v.contains("dtype") && v["dtype"].is_string(), path, ": tensor '", name, "': missing dtype");
    SANF_CHECK(v.contains("shape") && v["shape"].is_array(), path, ": tensor '", name, "': missing shape");
    SANF_CHECK(v.contains("data_offsets") && v["data_offsets"].is_array() && v["data_offsets"].size() == 2, path,
               ": tensor '", name, "': data_offsets must be [begin, end]");
    TensorEntry e;
    e.name = name;
    const std::string dts = v["dtype"].get<std::string>();
    SANF_CHECK(dtype_from_safetensors(dts, e.dtype), path, ": tensor '", name, "': unsupported dtype ", dts,
               " (supported: F32 F64 BF16 F16 I64 U8)");
    SANF_CHECK(v["shape"].size() <= size_t(kMaxDims), path, ": tensor '", name, "': more than ", kMaxDims, " dims");
    int64_t n = 1;
    for (const json& d : v["shape"]) {
      SANF_CHECK(d.is_number_integer() && d.get<int64_t>() >= 0, path, ": tensor '", name,
                 "': shape entries must be non-negative integers");
      int64_t s = d.get<int64_t>();
      SANF_CHECK(s == 0 || n <= (int64_t(1) << 50) / s, path, ": tensor '", name, "': shape too large");
      n *= s;
      e.shape.push_back(s);
    }
    // Unsigned JSON numbers above 2^63-1 would wrap to negative int64 (and end - begin could overflow).
    for (const json& o : v["data_offsets"])
      SANF_CHECK(o.is_number_integer() && (o.is_number_unsigned() ? o.get<uint64_t>() <= uint64_t(INT64_MAX)
                                                                  : o.get<int64_t>() >= 0),
                 path, ": tensor '", name, "': data_offsets must be non-negative integers below 2^63");
    e.begin = v["data_offsets"][0].get<int64_t>();
    e.end = v["data_offsets"][1].get<int64_t>();
    SANF_CHECK(e.begin <= e.end, path, ": tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] are reversed");
    SANF_CHECK(e.end - e.begin == n * dtype_size(e.dtype), path, ": tensor '", name, "': ", dts, " ",
               shape_str(e.shape), " needs ", n * dtype_size(e.dtype), " bytes, data_offsets give ", e.end - e.begin);
    entries.push_back(std::move(e));
  }
  // The byte ranges must tile [0, data_size) exactly: sorted by begin, each starts where the last ended.
  std::sort(entries.begin(), entries.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  int64_t at = 0;
  for (const TensorEntry& e : entries) {
    SANF_CHECK(e.begin >= at, path, ": tensor '", e.name, "' overlaps the previous tensor (starts at byte ", e.begin,
               ", previous ends at ", at, ")");
    SANF_CHECK(e.begin == at, path, ": gap of ", e.begin - at, " bytes before tensor '", e.name, "'");
    at = e.end;
  }
  SANF_CHECK(at <= data_size, path, ": tensors need ", at, " data bytes but the file has ", data_size,
             " (truncated?)");
  SANF_CHECK(at == data_size, path, ": ", data_size - at, " unexpected bytes after the last tensor");
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  SANF_CHECK(fd >= 0, path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    SANF_FAIL(path, ": cannot stat: ", std::strerror(err));
  }
  const int64_t size = st.st_size;
  if (size < 8) {
    ::close(fd);
    SANF_FAIL(path, ": file of ", size, " bytes is too short for a safetensors header");
  }
  void* map = ::mmap(nullptr, size_t(size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  SANF_CHECK(map != MAP_FAILED, path, ": mmap failed: ", std::strerror(errno));
  f.mapping_ = std::shared_ptr<void>(map, [size](void* p) { ::munmap(p, size_t(size)); });
  const auto* bytes = static_cast<const unsigned char*>(map);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];  // little-endian
  SANF_CHECK(n <= uint64_t(kMaxHeader), path, ": header length ", n, " is larger than the 100 MiB limit");
  SANF_CHECK(int64_t(n) <= size - 8, path, ": header length ", n, " runs past the end of the ", size, "-byte file");
  parse_safetensors_header(path, reinterpret_cast<const char*>(bytes + 8), size_t(n), size - 8 - int64_t(n),
                           f.metadata_, f.entries_);
  f.data_ = reinterpret_cast<const char*>(bytes + 8 + n);
  for (size_t i = 0; i < f.entries_.size(); ++i) f.index_[f.entries_[i].name] = i;
  return f;
}

const TensorEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = index_.find(name);
  SANF_CHECK(it != index_.end(), path_, ": no tensor named '", name, "'");
  return entries_[it->second];
}

Tensor SafetensorsFile::get(const std::string& name) const {
  const TensorEntry& e = entry(name);
  void* p = const_cast<char*>(data_ + e.begin);
  // The data area after the header need not be aligned for the dtype: copy when it is not.
  if (reinterpret_cast<uintptr_t>(p) % uintptr_t(dtype_size(e.dtype)) != 0) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    if (e.end > e.begin) std::memcpy(t.data_ptr(), p, size_t(e.end - e.begin));
    return t;
  }
  std::shared_ptr<void> keep = mapping_;
  return Tensor::from_blob(p, e.shape, e.dtype, Device::CPU, [keep](void*) mutable { keep.reset(); });
}

struct SafetensorsWriter::State {
  explicit State(const std::string& path) : file(path) {}
  AtomicFile file;
  int64_t data_start = 0;  // file offset of the data area
  std::map<std::string, size_t> index;
  std::vector<TensorEntry> entries;
  std::vector<int64_t> rows_written;
};

SafetensorsWriter::SafetensorsWriter(const std::string& path, const std::vector<Spec>& specs,
                                     const std::map<std::string, std::string>& metadata)
    : st_(std::make_unique<State>(path)) {
  using nlohmann::json;
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  int64_t at = 0;
  for (const Spec& s : specs) {
    SANF_CHECK(s.name != "__metadata__" && !header.contains(s.name), path, ": tensor name '", s.name,
               "' is reserved or repeated");
    const int64_t nbytes = numel(s.shape) * dtype_size(s.dtype);
    header[s.name] = {{"dtype", safetensors_dtype_name(s.dtype)}, {"shape", s.shape}, {"data_offsets", {at, at + nbytes}}};
    st_->index[s.name] = st_->entries.size();
    st_->entries.push_back({s.name, s.dtype, s.shape, at, at + nbytes});
    at += nbytes;
  }
  st_->rows_written.assign(specs.size(), 0);
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // pad so the data area starts 8-byte aligned
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = (uint64_t(text.size()) >> (8 * i)) & 0xff;
  st_->file.write(len, 8);
  st_->file.write(text);
  st_->data_start = 8 + int64_t(text.size());
}

SafetensorsWriter::~SafetensorsWriter() = default;

void SafetensorsWriter::write_rows(const std::string& name, int64_t row, const Tensor& rows) {
  write_rows_impl(name, row, rows, false);
}

void SafetensorsWriter::write_rows_impl(const std::string& name, int64_t row, const Tensor& t, bool whole) {
  const std::string& path = st_->file.path();
  auto it = st_->index.find(name);
  SANF_CHECK(it != st_->index.end(), path, ": no tensor '", name, "' declared");
  const TensorEntry& e = st_->entries[it->second];
  SANF_CHECK(t.dtype() == e.dtype, path, ": tensor '", name, "' is ", dtype_name(e.dtype), ", got ",
             dtype_name(t.dtype()));
  int64_t nrows = 1, row_bytes = e.end - e.begin;
  if (whole) {
    SANF_CHECK(t.shape() == e.shape, path, ": tensor '", name, "' has shape ", shape_str(e.shape), ", got ",
               shape_str(t.shape()));
  } else {
    SANF_CHECK(!e.shape.empty() && t.dim() == int64_t(e.shape.size()) &&
                   std::equal(e.shape.begin() + 1, e.shape.end(), t.shape().begin() + 1),
               path, ": rows of tensor '", name, "' ", shape_str(e.shape), " cannot be ", shape_str(t.shape()));
    nrows = t.shape()[0];
    SANF_CHECK(row >= 0 && row + nrows <= e.shape[0], path, ": rows [", row, ", ", row + nrows, ") of tensor '",
               name, "' are outside its ", e.shape[0], " rows");
    row_bytes = e.shape[0] > 0 ? (e.end - e.begin) / e.shape[0] : 0;
  }
  const std::vector<char> bytes = t.to_bytes();
  st_->file.seek(st_->data_start + e.begin + row * row_bytes);
  st_->file.write(bytes.data(), bytes.size());
  st_->rows_written[it->second] += whole ? (e.shape.empty() ? 1 : e.shape[0]) : nrows;
}

void SafetensorsWriter::commit() {
  for (size_t i = 0; i < st_->entries.size(); ++i) {
    const TensorEntry& e = st_->entries[i];
    const int64_t want = e.shape.empty() ? 1 : e.shape[0];
    SANF_CHECK(st_->rows_written[i] == want, st_->file.path(), ": tensor '", e.name, "' got ", st_->rows_written[i],
               " of its ", want, " rows before commit");
  }
  st_->file.commit();
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsWriter::Spec> specs;
  for (const auto& [name, t] : tensors) specs.push_back({name, t.dtype(), t.shape()});
  SafetensorsWriter w(path, specs, metadata);
  for (const auto& [name, t] : tensors) w.write_all(name, t);
  w.commit();
}

}  // namespace sanf
