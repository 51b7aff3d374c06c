// tests/testing/warp_emulator.h: just enough of a CUDA thread block, on the CPU, to run a kernel written for
// it (kernels/fast/flash_attention.cuh) and test its lane arithmetic on a machine without a GPU.
//
// Include this, then the kernel's header. Every thread of a block is a host thread (std::thread); blocks
// run one after another, so a kernel's __shared__ arrays become function-local statics that the block's
// threads share. __syncthreads() is a barrier over the block's threads. The warp-wide instructions are
// collectives over the warp's 32 threads: each lane posts its operands, a barrier, each lane computes its
// own result from all the posted operands, a barrier (so no lane posts again before every lane has read):
//   __shfl_xor_sync(mask, v, m)   lane l gets lane (l ^ m)'s v (the whole warp takes part: mask unused)
//   ldmatrix_x4(r, row)           r[i] = the pair (row l / 4, cols 2(l % 4), +1) of matrix i, whose row j is
//                                 at the address lane 8i + j posted; _trans: the pair (rows 2(l % 4), +1 of
//                                 col l / 4). Addresses must be 16-byte aligned, as on the GPU.
//   mma_bf16(c, a, b0, b1)        c += A B for m16n8k16 with bf16 A, B and f32 C, each matrix element read
//                                 from the lane and register the PTX ISA's fragment layout puts it in (the
//                                 layout written out in kernels/fast/flash_attention.cuh); products are
//                                 exact in f32 and summed in f32 in k order.
// The layouts here are an independent reading of the PTX ISA ("Matrix Fragments for mma.m16n8k16",
// "ldmatrix"); a kernel whose indexing disagrees with them fails its emulated test. What this cannot show:
// anything about the real hardware (timing, bank conflicts, memory ordering beyond the barriers), or a
// misreading of the ISA shared by kernel and emulator. The GPU tests cover those.
#pragma once

#define SANF_WARP_EMULATION 1

#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/dtype.h"

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct EmulatedDim3 {
  unsigned x = 0, y = 0, z = 0;
};
inline thread_local EmulatedDim3 threadIdx, blockIdx;

struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(8) uint2 {
  uint32_t x, y;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline float2 make_float2(float x, float y) { return {x, y}; }

namespace sanf::warp_emulation {

struct Warp {
  std::barrier<> bar{32};
  const void* addr[32] = {};
  uint32_t regs[32][6] = {};
  float vals[32][4] = {};
};

struct Block {
  explicit Block(int threads) : sync(threads), warps(new Warp[size_t(threads / 32)]) {}
  std::barrier<> sync;
  std::unique_ptr<Warp[]> warps;
};

inline thread_local Block* t_block = nullptr;
inline std::atomic<int> g_misaligned{0};  // ldmatrix row addresses that were not 16-byte aligned

inline Warp& warp() { return t_block->warps[threadIdx.x / 32]; }
inline int lane() { return int(threadIdx.x % 32); }

inline float bf16_value(uint32_t reg, int half) { return bf16_bits_to_f32(uint16_t(half ? reg >> 16 : reg & 0xffffu)); }

// Runs kernel() as `grid` blocks of `threads` threads (a multiple of 32), one block after another.
template <typename K>
void launch(unsigned grid, int threads, K kernel) {
  if (threads <= 0 || threads % 32 != 0) throw std::invalid_argument("warp_emulation::launch: threads % 32 != 0");
  for (unsigned b = 0; b < grid; ++b) {
    Block block(threads);
    std::vector<std::thread> ts;
    ts.reserve(size_t(threads));
    for (int i = 0; i < threads; ++i)
      ts.emplace_back([&block, &kernel, b, i] {
        t_block = &block;
        threadIdx.x = unsigned(i);
        blockIdx.x = b;
        kernel();
      });
    for (std::thread& t : ts) t.join();
  }
}

inline void ldmatrix(uint32_t (&r)[4], const void* row, bool trans) {
  Warp& w = warp();
  const int l = lane(), g = l / 4, t = l % 4;
  if (reinterpret_cast<uintptr_t>(row) % 16 != 0) ++g_misaligned;
  w.addr[l] = row;
  w.bar.arrive_and_wait();
  for (int i = 0; i < 4; ++i) {
    auto at = [&](int rr, int c) { return static_cast<const uint16_t*>(w.addr[8 * i + rr])[c]; };
    const uint16_t lo = trans ? at(2 * t, g) : at(g, 2 * t);
    const uint16_t hi = trans ? at(2 * t + 1, g) : at(g, 2 * t + 1);
    r[i] = uint32_t(lo) | (uint32_t(hi) << 16);
  }
  w.bar.arrive_and_wait();
}

}  // namespace sanf::warp_emulation

inline void __syncthreads() { sanf::warp_emulation::t_block->sync.arrive_and_wait(); }

inline float __shfl_xor_sync(unsigned /*mask*/, float v, int m) {
  using namespace sanf::warp_emulation;
  Warp& w = warp();
  const int l = lane();
  w.vals[l][0] = v;
  w.bar.arrive_and_wait();
  const float r = w.vals[l ^ m][0];
  w.bar.arrive_and_wait();
  return r;
}

inline void ldmatrix_x4(uint32_t (&r)[4], const void* row) { sanf::warp_emulation::ldmatrix(r, row, false); }
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) { sanf::warp_emulation::ldmatrix(r, row, true); }

// c += A (16 x 16) B (16 x 8). With g = lane / 4, t = lane % 4, element (row, k) of A is in lane
// (row % 8) * 4 + (k % 8) / 2, register (row / 8) + 2 (k / 8), half k % 2; element (k, n) of B in lane
// n * 4 + (k % 8) / 2, register k / 8, half k % 2; element (row, n) of C in lane (row % 8) * 4 + n / 2, value
// 2 (row / 8) + n % 2.
inline void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  using namespace sanf::warp_emulation;
  Warp& w = warp();
  const int l = lane();
  for (int i = 0; i < 4; ++i) w.regs[l][i] = a[i], w.vals[l][i] = c[i];
  w.regs[l][4] = b0, w.regs[l][5] = b1;
  w.bar.arrive_and_wait();
  float d[4];
  for (int j = 0; j < 4; ++j) {
    const int row = l / 4 + 8 * (j / 2), n = 2 * (l % 4) + (j % 2);
    float acc = w.vals[(row % 8) * 4 + n / 2][2 * (row / 8) + n % 2];
    for (int k = 0; k < 16; ++k) {
      const float av = bf16_value(w.regs[(row % 8) * 4 + (k % 8) / 2][row / 8 + 2 * (k / 8)], k % 2);
      const float bv = bf16_value(w.regs[n * 4 + (k % 8) / 2][4 + k / 8], k % 2);
      acc += av * bv;
    }
    d[j] = acc;
  }
  w.bar.arrive_and_wait();
  for (int j = 0; j < 4; ++j) c[j] = d[j];
}
