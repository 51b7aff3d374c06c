// core/atomic_file.cpp: temporary file + fsync + rename.
#include "core/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace sanf {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp." + std::to_string(::getpid());
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
