// core/safetensors.h: reading and writing safetensors files, the project's one checkpoint format.
//
// Layout: 8-byte little-endian header length N, then N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v"}}
// then the raw little-endian data; offsets are relative to the end of the header.
//
// The reader memory-maps the file and validates the whole header before any tensor is touched: the
// length fits the file, the JSON parses, every dtype is known, every shape is non-negative, each byte
// range has exactly the size its dtype and shape need, and the ranges tile the data area with no gap,
// overlap or trailing bytes. Every error names the file (and the tensor). Tensors it returns are CPU
// views of the mapping (no copy) that keep the mapping alive.
// The writer writes to a temporary file in the same directory and renames it over the target, so a crash
// never leaves a half-written checkpoint.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace sanf {

struct TensorEntry {
  std::string name;
  DType dtype;
  Shape shape;
  int64_t begin = 0, end = 0;  // byte range in the data area
};

class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::vector<TensorEntry>& entries() const { return entries_; }  // in data order
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  const TensorEntry& entry(const std::string& name) const;  // throws naming the file and tensor
  Tensor get(const std::string& name) const;                // zero-copy CPU tensor

 private:
  std::string path_;
  std::shared_ptr<void> mapping_;  // the mmap'ed file; unmapped when the last tensor view dies
  const char* data_ = nullptr;     // start of the data area
  std::map<std::string, std::string> metadata_;
  std::vector<TensorEntry> entries_;
  std::map<std::string, size_t> index_;
};

// Parse and validate a header held in memory (used by open() and by the fuzz target): `header` is the JSON
// text, `data_size` the number of bytes after it. Throws naming `path`.
void parse_safetensors_header(const std::string& path, const char* header, size_t header_size, int64_t data_size,
                              std::map<std::string, std::string>& metadata, std::vector<TensorEntry>& entries);

// A streaming writer: names, dtypes and shapes are fixed up front (they make the header), then each
// tensor's data arrives in slices of whole rows along dim 0, in any order, so a file larger than memory
// (a feature cache) can be written batch by batch. Written through AtomicFile: nothing appears at `path`
// until commit(), which first checks that every row of every tensor was written exactly once.
class SafetensorsWriter {
 public:
  struct Spec {
    std::string name;
    DType dtype;
    Shape shape;  // rank >= 1 for write_rows; rank 0 tensors take write_all
  };
  SafetensorsWriter(const std::string& path, const std::vector<Spec>& specs,
                    const std::map<std::string, std::string>& metadata = {});
  ~SafetensorsWriter();
  // rows: (r, shape[1:]...) of the entry's dtype, any device -> rows [row, row + r) of `name`.
  void write_rows(const std::string& name, int64_t row, const Tensor& rows);
  void write_all(const std::string& name, const Tensor& t) { write_rows_impl(name, 0, t, true); }
  void commit();

 private:
  void write_rows_impl(const std::string& name, int64_t row, const Tensor& t, bool whole);
  struct State;
  std::unique_ptr<State> st_;
};

// Write tensors (any device; converted to contiguous host bytes) with optional metadata, atomically.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// safetensors' dtype names ("F32", "BF16", ...).
const char* safetensors_dtype_name(DType dt);

}  // namespace sanf
