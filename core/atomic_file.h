// core/atomic_file.h: files that appear whole or not at all.
//
// Every output file of the project (checkpoints, feature caches, metrics, reports) is written through
// AtomicFile: the bytes go to a temporary file next to the target ("<path>.tmp.<pid>"), which commit()
// flushes, fsyncs and renames over the target. Until commit() succeeds the target is untouched; if the
// writer is destroyed without a commit (an exception, Ctrl-C unwinding) the temporary file is removed.
// So a crash or an interrupted run never leaves a half-written output behind.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace sanf {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // creates the temporary file; throws naming it
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();  // removes the temporary file unless committed

  void write(const void* data, size_t n);  // throws naming the target on a short write
  void write(const std::string& s) { write(s.data(), s.size()); }
  void seek(int64_t offset);               // absolute position in the temporary file
  void commit();                           // flush + fsync + rename; throws naming the target

  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_;
  FILE* fp_ = nullptr;
  bool committed_ = false;
};

// The whole content at once.
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace sanf
