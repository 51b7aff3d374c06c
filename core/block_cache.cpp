// core/block_cache.cpp: size classes and free lists (see core/block_cache.h).
#include "core/block_cache.h"

namespace sanf {

size_t block_size_class(size_t n) {
  constexpr size_t kSmallStep = 512, kSmallMax = size_t(1) << 20;
  if (n == 0) n = 1;
  if (n <= kSmallMax) return (n + kSmallStep - 1) / kSmallStep * kSmallStep;
  size_t p = kSmallMax;  // the largest power of two below n
  while (p * 2 < n) p *= 2;
  const size_t step = p / 4;
  return (n + step - 1) / step * step;
}

void* BlockCache::take(size_t cls) {
  auto it = free_.find(cls);
  if (it == free_.end() || it->second.empty()) return nullptr;
  void* p = it->second.back();
  it->second.pop_back();
  bytes_ -= cls;
  return p;
}

bool BlockCache::put(void* p, size_t cls) noexcept {
  if (cls > cap_ || bytes_ > cap_ - cls) return false;
  try {
    free_[cls].push_back(p);
  } catch (...) {  // out of host memory for the list
    return false;
  }
  bytes_ += cls;
  return true;
}

}  // namespace sanf
