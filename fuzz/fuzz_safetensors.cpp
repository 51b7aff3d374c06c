// fuzz/fuzz_safetensors.cpp: libFuzzer target for the safetensors reader (core/safetensors.h).
//
// Each input is taken as a whole safetensors file. When its first 8 bytes give a header length that fits,
// the header goes to parse_safetensors_header; whether or not it parses, the bytes are then opened as a file
// through SafetensorsFile::open (the full path: length checks, mmap, header validation), from an in-memory
// file (memfd) reopened through /proc/self/fd, and every tensor it accepts is read back.
//
// A sanf::Error is the expected outcome for bad input. Anything else is a finding: a crash, an ASan or UBSan
// report, an exception of another type (libFuzzer reports it as an uncaught exception), a timeout, or an
// accepted file that breaks the reader's own promises (checked below with abort()): entries sorted, tiling
// the data area exactly, each range the size its dtype and shape need, and get() returning those bytes.
//
// Built and run by tools/fuzz.sh (clang++ -fsanitize=fuzzer,address,undefined).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/safetensors.h"

namespace {

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "fuzz_safetensors: accepted input breaks the reader's promise: %s\n", what);
  std::abort();
}

// One in-memory file, rewritten for each input.
int memfd() {
  static int fd = [] {
    int f = ::memfd_create("fuzz_safetensors", 0);
    if (f < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    return f;
  }();
  return fd;
}

void check_entries(const std::vector<sanf::TensorEntry>& entries, int64_t data_size) {
  int64_t at = 0;
  for (const sanf::TensorEntry& e : entries) {
    if (e.begin != at) finding("entries do not tile the data area in order");
    if (e.end < e.begin || e.end > data_size) finding("entry range outside the data area");
    if (sanf::numel(e.shape) * sanf::dtype_size(e.dtype) != e.end - e.begin) finding("entry size != dtype x shape");
    at = e.end;
  }
  if (at != data_size) finding("entries do not cover the data area");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // 1. The header parser alone, on the header the length prefix points at.
  if (size >= 8) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
    if (n <= size - 8) {
      std::map<std::string, std::string> metadata;
      std::vector<sanf::TensorEntry> entries;
      const int64_t data_size = int64_t(size - 8 - n);
      try {
        sanf::parse_safetensors_header("fuzz", reinterpret_cast<const char*>(data + 8), size_t(n), data_size, metadata,
                                       entries);
        check_entries(entries, data_size);
      } catch (const sanf::Error&) {
      }
    }
  }

  // 2. The whole file through SafetensorsFile::open, then every tensor read back.
  const int fd = memfd();
  if (::ftruncate(fd, 0) != 0 || (size > 0 && ::pwrite(fd, data, size, 0) != ssize_t(size))) {
    std::perror("memfd write");
    std::abort();
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  try {
    sanf::SafetensorsFile f = sanf::SafetensorsFile::open(path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
    const int64_t data_size = int64_t(size - 8 - n);
    check_entries(f.entries(), data_size);
    for (const sanf::TensorEntry& e : f.entries()) {
      if (!f.contains(e.name) || f.entry(e.name).begin != e.begin) finding("entry not found by name");
      sanf::Tensor t = f.get(e.name);
      if (t.shape() != e.shape || t.dtype() != e.dtype) finding("get() returned another shape or dtype");
      const std::vector<char> bytes = t.to_bytes();
      if (int64_t(bytes.size()) != e.end - e.begin ||
          (!bytes.empty() && std::memcmp(bytes.data(), data + 8 + n + size_t(e.begin), bytes.size()) != 0))
        finding("get() returned other bytes than the file's");
    }
    (void)f.metadata();
  } catch (const sanf::Error&) {
  }
  return 0;
}
