// kernels/cuda/common.cuh: what the CUDA kernels share: launch sizes, strided index arithmetic and
// block-wide reductions.
//
// Thread mapping conventions used in kernels/cuda/*.cu:
//   - elementwise kernels: one thread per output element, in a grid-stride loop (a capped grid walks any n);
//   - row kernels (layer norm, reductions with I == 1, softmax past 1024 columns): one block per row, the
//     block's threads stride over the row's columns and combine with block_reduce(); softmax rows up to 1024
//     columns take one warp each (kernels/cuda/softmax.cu);
//   - column kernels (reductions with I > 1, layer norm's dweight/dbias): a (32 x 8) block, threadIdx.x over
//     32 adjacent columns (coalesced loads), threadIdx.y over 8 interleaved slices of the rows.
// Everything is launched on the legacy default stream (stream 0), which orders it with cudaMemcpy.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/cuda_utils.h"
#include "core/shape.h"
#include "core/tensor.h"

namespace sanf::kernels::cuda_detail {

constexpr int kThreads = 256;  // threads per block of the elementwise kernels

// Blocks for a grid-stride loop over n elements: enough to fill the GPU, capped so the grid stays legal
// (each thread then handles several elements).
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return unsigned(std::clamp<int64_t>(blocks, 1, int64_t(1) << 16));
}

// Blocks for a kernel with one block per row (or per task) over `rows` of them, in a grid-stride loop:
// one each, capped so the grid stays legal (each block then takes several).
inline unsigned row_blocks(int64_t rows) { return unsigned(std::clamp<int64_t>(rows, 1, int64_t(1) << 16)); }

// Threads per block for a row kernel over `cols` columns: a multiple of the warp size, no more than the row
// needs (a 10-wide row does not idle 246 threads), at most 256.
inline int row_threads(int64_t cols) {
  int t = 32;
  while (t < 256 && t < cols) t *= 2;
  return t;
}

// The element offset of row-major linear index i in a strided layout: peel the multi-index off from the
// last dim, adding index * stride per dim. I is int64_t, or uint32_t for a layout that layout_fits_32 (the GPU
// divides 32-bit integers in a few instructions and emulates 64-bit division in dozens: on an H200 the
// 64-bit form held strided copies to about a quarter of the memory bandwidth).
template <typename I>
__device__ __forceinline__ I layout_offset(const Layout& l, I i) {
  I off = 0;
  for (int d = l.ndim - 1; d >= 0; --d) {
    const I n = I(l.shape[d]);
    off += (i % n) * I(l.strides[d]);
    i /= n;
  }
  return off;
}

// Whether every linear index and every offset of the layout is below 2^31 (no negative strides): then the
// uint32_t form of layout_offset gives the same offsets, and a grid-stride loop over its n elements cannot
// wrap (n + the grid's 2^24 threads < 2^32).
inline bool layout_fits_32(const Layout& l) {
  constexpr int64_t kLimit = int64_t(1) << 31;
  int64_t n = 1, span = 0;
  for (int d = 0; d < l.ndim; ++d) {
    if (l.strides[d] < 0) return false;
    n *= l.shape[d];
    if (l.shape[d] > 0) span += (l.shape[d] - 1) * l.strides[d];
    if (n >= kLimit || span >= kLimit) return false;
  }
  return true;
}

// layout_is_contiguous / layout_numel: core/shape.h.

// ---- block reductions ---------------------------------------------------------------------------------
// block_reduce(v, op): every thread of the block passes its partial value; every thread gets the combination
// of all of them. Two stages: a butterfly of warp shuffles inside each warp (after it every lane holds its
// warp's result), then the per-warp results, parked in shared memory, are combined. The block size must be
// a multiple of 32 and at most 1024; `op` must be associative and commutative. block_reduce ends with a
// __syncthreads(), so calls may follow each other (they share the buffer).

struct SumOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    return a + b;
  }
};
// Max that lets NaN win (a NaN anywhere makes the result NaN), as the CPU kernels.
struct MaxOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    return (a != a || a > b) ? a : b;  // a NaN, or larger; else b (which may be NaN)
  }
};

template <typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
  for (int delta = 16; delta > 0; delta /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, delta));
  return v;
}

template <typename T, typename Op>
__device__ T block_reduce(T v, Op op) {
  __shared__ T warp_results[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  v = warp_reduce(v, op);
  if (lane == 0) warp_results[warp] = v;
  __syncthreads();
  // At most 32 warp results: every thread combines them in the same order (so all get the same bits).
  T r = warp_results[0];
  for (int k = 1; k < nwarps; ++k) r = op(r, warp_results[k]);
  __syncthreads();  // the buffer may be reused by the next call
  return r;
}

// Scratch device memory from the caching allocator, returned when the scope ends (also on an exception).
// Freeing right after queuing the kernels is safe: the next user of the block runs later on the same stream.
struct DeviceScratch {
  void* p;
  explicit DeviceScratch(int64_t nbytes) : p(cuda_alloc(nbytes)) {}
  ~DeviceScratch() { cuda_free(p); }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
};

}  // namespace sanf::kernels::cuda_detail
