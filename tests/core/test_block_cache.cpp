// tests/core/test_block_cache.cpp: size classes, the free lists, and the host caching allocator.
#include <doctest/doctest.h>

#include <vector>

#include "autograd/ops.h"
#include "core/block_cache.h"

using namespace sanf;

TEST_CASE("block cache: size classes round up by at most 25% and are monotone") {
  CHECK(block_size_class(0) == 512);
  CHECK(block_size_class(1) == 512);
  CHECK(block_size_class(512) == 512);
  CHECK(block_size_class(513) == 1024);
  CHECK(block_size_class(size_t(1) << 20) == size_t(1) << 20);
  CHECK(block_size_class((size_t(1) << 20) + 1) == (size_t(5) << 18));  // 1.25 MiB
  CHECK(block_size_class(size_t(3) << 20) == size_t(3) << 20);         // 2 MiB < n: steps of 512 KiB
  CHECK(block_size_class((size_t(3) << 20) + 1) == (size_t(7) << 19));  // 3.5 MiB
  size_t prev = 0;
  for (size_t n = 1; n < (size_t(64) << 20); n = n * 9 / 8 + 1) {
    const size_t c = block_size_class(n);
    CAPTURE(n);
    CHECK(c >= n);
    CHECK(c >= prev);
    if (n > 4096) CHECK(double(c) <= 1.25 * double(n) + 1);
    prev = c;
  }
}

TEST_CASE("block cache: last freed first, a byte cap, release_all") {
  BlockCache cache(4096);
  int a = 0, b = 0, c = 0;
  CHECK(cache.take(1024) == nullptr);
  CHECK(cache.put(&a, 1024));
  CHECK(cache.put(&b, 1024));
  CHECK(cache.put(&c, 2048));
  CHECK(cache.bytes() == 4096);
  CHECK_FALSE(cache.put(&a, 512));  // past the cap: refused, the caller frees it
  CHECK(cache.take(1024) == &b);    // last freed first
  CHECK(cache.take(1024) == &a);
  CHECK(cache.take(1024) == nullptr);
  CHECK(cache.take(512) == nullptr);
  std::vector<void*> released;
  cache.release_all([&](void* p, size_t cls) {
    CHECK(cls == 2048);
    released.push_back(p);
  });
  CHECK(released == std::vector<void*>{&c});
  CHECK(cache.bytes() == 0);
  CHECK(cache.take(2048) == nullptr);
}

TEST_CASE("host memory: a freed block is reused, and a steady loop allocates nothing from the system") {
  host_memory_release_cache();
  void* first = nullptr;
  {
    Tensor t = Tensor::empty({1 << 18}, DType::F32);  // 1 MiB: cached size
    first = t.data_ptr();
    CHECK(reinterpret_cast<uintptr_t>(first) % 64 == 0);
  }
  const HostMemoryStats before = host_memory_stats();
  CHECK(before.cached_bytes >= (1 << 20));
  {
    Tensor t = Tensor::empty({1 << 18}, DType::F32);
    CHECK(t.data_ptr() == first);
  }
  CHECK(host_memory_stats().cache_hits == before.cache_hits + 1);

  // The ops of a small MLP step, forward and backward, repeated: after the first round every block comes
  // from the cache.
  Generator gen(3);
  Tensor x = randn({256, 128}, DType::F32, Device::CPU, &gen);
  Tensor w = randn({512, 128}, DType::F32, Device::CPU, &gen);
  w.set_requires_grad(true);
  auto step = [&] {
    w.zero_grad();
    backward(sum(gelu(linear(x, w, Tensor()))));
  };
  step();
  const HostMemoryStats warm = host_memory_stats();
  for (int i = 0; i < 3; ++i) step();
  const HostMemoryStats after = host_memory_stats();
  CHECK(after.system_allocs == warm.system_allocs);
  CHECK(after.cache_hits > warm.cache_hits);

  host_memory_release_cache();
  CHECK(host_memory_stats().cached_bytes == 0);
}
