// core/atomic_file.h: files that appear whole or not at all, and the reclaiming of temporary files whose
// writer is gone.
//
// Every output file of the project (checkpoints, feature caches, metrics, reports) is written through
// AtomicFile: the bytes go to a temporary file next to the target, "<path>.tmp.<host>.<pid>" (temp_path_for:
// this host's name, with characters other than A-Z a-z 0-9 - _ replaced by '_', and the writer's PID),
// which commit() flushes, fsyncs and renames over the target. Until commit() succeeds the target is
// untouched; if the writer is destroyed without a commit (an exception, Ctrl-C unwinding) the temporary file
// is removed. So a crash or an interrupted run never leaves a half-written output behind.
//
// A writer that is killed (SIGKILL, the OOM killer, a power cut) cannot remove its temporary file, and a
// killed feature extraction leaves tens or hundreds of MB. reclaim_stale_temp_files(dir) removes such
// leftovers: regular files in `dir` (not below it) named "<anything>.tmp.<this host>.<pid>" whose PID is not
// a running process here (kill(pid, 0) fails with ESRCH) and that were last modified at least `min_age` ago
// (default 10 minutes). The host name keeps a process from reclaiming another machine's files on a shared
// filesystem; the age keeps it from reclaiming a live writer whose PID it cannot see (another PID namespace,
// e.g. a container with the same host name on the same disk: such a writer writes every few seconds or
// minutes at most). A PID that has been reused by an unrelated process keeps its file until that process
// ends. Nothing else is touched: files of other hosts, other names, directories, symbolic links. Each
// AtomicFile sweeps its target's directory once per process before creating its temporary file (errors
// ignored: a sweep never makes a write fail); load_features (apps/features.h) sweeps the feature cache
// directory and says what it removed.
#pragma once

#include <chrono>
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

// "<path>.tmp.<host>.<pid>" for this process: where an AtomicFile for `path` writes until commit().
std::string temp_path_for(const std::string& path);

struct ReclaimedFiles {
  int64_t files = 0, bytes = 0;
};

constexpr std::chrono::seconds kStaleTempAge{600};

// Removes the stale temporary files in `dir` (see above) and says how many and how large they were.
// Files that cannot be examined or removed are left alone; a missing directory reclaims nothing.
ReclaimedFiles reclaim_stale_temp_files(const std::string& dir, std::chrono::seconds min_age = kStaleTempAge);

}  // namespace sanf
