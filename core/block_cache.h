// core/block_cache.h: the free lists behind the caching allocators (host memory in core/tensor.cpp,
// device memory in core/cuda/memory.cu).
//
// A training step or a batch of feature extraction allocates and frees the same tensor sizes over and over.
// Giving them back to the system each time costs, on the host, an mmap/munmap pair plus a page fault per
// 4 KiB page when the memory is touched again (glibc serves large blocks by mmap), and, on a GPU, a
// cudaMalloc and a device-wide synchronising cudaFree. So freed blocks are kept in free lists keyed by a
// rounded size class and handed out again: in steady state nothing is allocated from the system.
//
//   size class:  up to 1 MiB: a multiple of 512 B;
//                above:       a multiple of a quarter of the power of two below the size
//                             (1 MiB < n <= 2 MiB -> steps of 256 KiB, ...): at most 25% is wasted, and there
//                             are four classes per doubling.
//
// BlockCache holds only the free lists (not thread-safe: its owner locks). Blocks are handed out last
// freed first (likely still in cache). A cache with a byte cap refuses blocks past it (the owner then
// returns them to the system), so it can never hold more than that.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace sanf {

size_t block_size_class(size_t nbytes);

class BlockCache {
 public:
  explicit BlockCache(size_t cap_bytes = SIZE_MAX) : cap_(cap_bytes) {}

  // A cached block of size class cls (taken out of the cache), or nullptr.
  void* take(size_t cls);
  // Keeps block p of class cls for reuse. False (p not kept; the caller frees it) when keeping it would
  // pass the cap, or when the list cannot grow (out of memory). Never throws.
  bool put(void* p, size_t cls) noexcept;
  // Empties the cache, calling release(p, cls) on every block.
  template <typename F>
  void release_all(F release) {
    for (auto& [cls, blocks] : free_)
      for (void* p : blocks) release(p, cls);
    free_.clear();
    bytes_ = 0;
  }
  size_t bytes() const { return bytes_; }

 private:
  std::unordered_map<size_t, std::vector<void*>> free_;  // size class -> cached blocks
  size_t bytes_ = 0, cap_;
};

// The host allocator's figures (core/tensor.cpp), for tests and benchmarks.
struct HostMemoryStats {
  int64_t live_bytes = 0;    // handed out to tensors now (by size class)
  int64_t cached_bytes = 0;  // freed and kept for reuse
  int64_t system_allocs = 0; // blocks obtained from the system so far (cache misses)
  int64_t cache_hits = 0;    // allocations served from the cache so far
};
HostMemoryStats host_memory_stats();
// Returns every cached host block to the system (the cache refills as tensors are freed again).
void host_memory_release_cache();

}  // namespace sanf
