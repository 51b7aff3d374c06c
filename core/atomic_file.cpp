// core/atomic_file.cpp: temporary file + fsync + rename, and the reclaiming of dead writers' temporary files.
#include "core/atomic_file.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <set>

#include "core/error.h"

namespace sanf {

namespace {

// This host's name as it appears in temporary file names (computed once).
const std::string& host_tag() {
  static const std::string tag = [] {
    char buf[256] = {};
    std::string h = ::gethostname(buf, sizeof buf - 1) == 0 && buf[0] != '\0' ? buf : "unknown-host";
    for (char& c : h)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        c = '_';
    return h;
  }();
  return tag;
}

// The PID in "<anything>.tmp.<host>.<pid>" for this host, or 0 when `name` is not such a name.
pid_t temp_owner(const std::string& name) {
  const std::string mark = ".tmp." + host_tag() + ".";
  const size_t at = name.rfind(mark);
  if (at == std::string::npos || at == 0) return 0;
  const std::string digits = name.substr(at + mark.size());
  if (digits.empty() || digits.size() > 9 || digits[0] == '0') return 0;
  long pid = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return 0;
    pid = pid * 10 + (c - '0');
  }
  return pid_t(pid);  // > 0: never 0 or negative, which kill() would take for a process group
}

bool process_gone(pid_t pid) { return ::kill(pid, 0) == -1 && errno == ESRCH; }

std::string directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Each directory once per process: AtomicFile is used for every small output file too.
void reclaim_once(const std::string& dir) {
  static std::mutex mu;
  static std::set<std::string> swept;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!swept.insert(dir).second) return;
  }
  try {
    reclaim_stale_temp_files(dir);
  } catch (...) {  // a sweep never makes a write fail
  }
}

}  // namespace

std::string temp_path_for(const std::string& path) {
  return path + ".tmp." + host_tag() + "." + std::to_string(::getpid());
}

ReclaimedFiles reclaim_stale_temp_files(const std::string& dir, std::chrono::seconds min_age) {
  ReclaimedFiles out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  const std::time_t now = std::time(nullptr);
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    const pid_t pid = temp_owner(name);
    if (pid <= 0 || !process_gone(pid)) continue;
    const std::string path = (dir.empty() || dir.back() == '/' ? dir : dir + "/") + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (now - st.st_mtime < std::time_t(min_age.count())) continue;
    if (::unlink(path.c_str()) == 0) ++out.files, out.bytes += int64_t(st.st_size);
  }
  ::closedir(d);
  return out;
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = temp_path_for(path_);
  reclaim_once(directory_of(path_));
  fp_ = std::fopen(tmp_.c_str(), "wb");
  SANF_CHECK(fp_ != nullptr, path_, ": cannot create ", tmp_, ": ", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fp_ != nullptr) std::fclose(fp_);
  if (!committed_) std::remove(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
  SANF_CHECK(fp_ != nullptr, path_, ": write after commit");
  if (n == 0) return;
  SANF_CHECK(std::fwrite(data, 1, n, fp_) == n, path_, ": write failed: ", std::strerror(errno));
}

void AtomicFile::seek(int64_t offset) {
  SANF_CHECK(fp_ != nullptr, path_, ": seek after commit");
  SANF_CHECK(::fseeko(fp_, off_t(offset), SEEK_SET) == 0, path_, ": seek failed: ", std::strerror(errno));
}

void AtomicFile::commit() {
  SANF_CHECK(fp_ != nullptr, path_, ": committed twice");
  bool ok = std::fflush(fp_) == 0;
  ok = ::fsync(::fileno(fp_)) == 0 && ok;
  ok = std::fclose(fp_) == 0 && ok;
  fp_ = nullptr;
  if (!ok || std::rename(tmp_.c_str(), path_.c_str()) != 0) SANF_FAIL(path_, ": write failed: ", std::strerror(errno));
  committed_ = true;
}

void write_file_atomic(const std::string& path, const std::string& content) {
  AtomicFile f(path);
  f.write(content);
  f.commit();
}

}  // namespace sanf
