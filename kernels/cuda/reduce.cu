// kernels/cuda/reduce.cu: sum / max over the middle axis of a contiguous (M, R, I) block, and max's backward.
//
// Semantics are kernels/cpu/reduce.cpp's: sums accumulate in double (also for f32) and are rounded once;
// max returns the first maximum, and a NaN anywhere wins (the first NaN), with argmax its position r.
//
// Two thread mappings:
//   I == 1 (rows): one block per output m; its threads stride over the R contiguous values of row m
//                  (coalesced), keep a private partial, then combine with a block reduction.
//   I > 1 (columns): a (32 x 8) block per (m, 32 adjacent i): threadIdx.x picks the column i (the 32 threads
//                  of a warp read 32 consecutive values of one r: coalesced), threadIdx.y in [0, 8) walks
//                  r = y, y + 8, y + 16, ...; the 8 partials per column meet in shared memory and are
//                  combined in a fixed order, so results are reproducible run to run.
// The first-max rule is order-independent: a partial is a (value, r) pair and two pairs combine by
// "NaN beats number, larger beats smaller, equal values (or two NaNs): smaller r", which picks exactly what
// a left-to-right scan picks, however the work was split.
#include <limits>

#include "kernels/cuda/common.cuh"
#include "kernels/reduce.h"

namespace sanf::kernels::cuda {

using namespace cuda_detail;

namespace {

// A max partial: value and its position r; r < 0 means "no element seen yet".
template <typename T>
struct ArgMax {
  T v;
  int64_t r;
};

template <typename T>
__device__ __forceinline__ ArgMax<T> better(ArgMax<T> a, ArgMax<T> b) {
  if (a.r < 0) return b;
  if (b.r < 0) return a;
  const bool a_nan = a.v != a.v, b_nan = b.v != b.v;
  if (a_nan != b_nan) return a_nan ? a : b;            // NaN wins
  if (!a_nan && a.v != b.v) return a.v > b.v ? a : b;  // larger wins
  return a.r < b.r ? a : b;                            // tie (or both NaN): the first
}

template <typename T>
__device__ ArgMax<T> block_reduce_argmax(ArgMax<T> p) {
  __shared__ T vals[32];
  __shared__ int64_t idx[32];
  for (int delta = 16; delta > 0; delta /= 2) {
    ArgMax<T> o;
    o.v = __shfl_xor_sync(0xffffffffu, p.v, delta);
    o.r = (int64_t)__shfl_xor_sync(0xffffffffu, (long long)p.r, delta);
    p = better(p, o);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  if (lane == 0) vals[warp] = p.v, idx[warp] = p.r;
  __syncthreads();
  ArgMax<T> r{vals[0], idx[0]};
  for (int k = 1; k < nwarps; ++k) r = better(r, ArgMax<T>{vals[k], idx[k]});
  __syncthreads();
  return r;
}

// ---- I == 1: one block per row -------------------------------------------------------------------------

template <typename T>
__global__ void sum_rows_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t M, int64_t R) {
  for (int64_t m = blockIdx.x; m < M; m += gridDim.x) {
    const T* row = x + m * R;
    double acc = 0;
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x) acc += double(row[r]);
    acc = block_reduce(acc, SumOp{});
    if (threadIdx.x == 0) out[m] = T(acc);
  }
}

template <typename T>
__global__ void max_rows_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t* __restrict__ argmax, int64_t M,
                                int64_t R) {
  for (int64_t m = blockIdx.x; m < M; m += gridDim.x) {
    const T* row = x + m * R;
    ArgMax<T> best{T(0), -1};
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x) best = better(best, ArgMax<T>{row[r], r});
    best = block_reduce_argmax(best);
    if (threadIdx.x == 0) {
      // R == 0 (the op rejects it; kept total as on the CPU): -inf at position 0.
      out[m] = best.r < 0 ? -std::numeric_limits<T>::infinity() : best.v;
      if (argmax) argmax[m] = best.r < 0 ? 0 : best.r;
    }
  }
}

// ---- I > 1: (32 x 8) blocks over (m, 32 columns) ---------------------------------------------------------

constexpr int kColX = 32, kColY = 8;

template <typename T>
__global__ void reduce_cols_kernel(ReduceOp op, const T* __restrict__ x, T* __restrict__ out,
                                   int64_t* __restrict__ argmax, int64_t M, int64_t R, int64_t I) {
  __shared__ double sums[kColY][kColX];
  __shared__ T vals[kColY][kColX];
  __shared__ int64_t idx[kColY][kColX];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t col_blocks = (I + kColX - 1) / kColX;
  for (int64_t task = blockIdx.x; task < M * col_blocks; task += gridDim.x) {
    const int64_t m = task / col_blocks, i = (task % col_blocks) * kColX + tx;
    const T* base = x + m * R * I + i;  // x[m, 0, i]; only dereferenced when i < I
    if (op == ReduceOp::Sum) {
      double acc = 0;
      if (i < I)
        for (int64_t r = ty; r < R; r += kColY) acc += double(base[r * I]);
      sums[ty][tx] = acc;
    } else {
      ArgMax<T> best{T(0), -1};
      if (i < I)
        for (int64_t r = ty; r < R; r += kColY) best = better(best, ArgMax<T>{base[r * I], r});
      vals[ty][tx] = best.v;
      idx[ty][tx] = best.r;
    }
    __syncthreads();
    if (ty == 0 && i < I) {
      if (op == ReduceOp::Sum) {
        double acc = sums[0][tx];
        for (int y = 1; y < kColY; ++y) acc += sums[y][tx];
        out[m * I + i] = T(acc);
      } else {
        ArgMax<T> best{vals[0][tx], idx[0][tx]};
        for (int y = 1; y < kColY; ++y) best = better(best, ArgMax<T>{vals[y][tx], idx[y][tx]});
        out[m * I + i] = best.r < 0 ? -std::numeric_limits<T>::infinity() : best.v;
        if (argmax) argmax[m * I + i] = best.r < 0 ? 0 : best.r;
      }
    }
    __syncthreads();  // the shared partials are rewritten by the next task
  }
}

// dx[m, r, i] = dout[m, i] where r == argmax[m, i], else 0: one thread per element of dx (a gather, so
// every element is written exactly once and no atomics are needed).
template <typename T>
__global__ void max_backward_kernel(const T* __restrict__ dout, const int64_t* __restrict__ argmax, T* __restrict__ dx,
                                    int64_t R, int64_t I, int64_t n) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k % I, r = (k / I) % R, m = k / (I * R);
    const int64_t o = m * I + i;
    dx[k] = argmax[o] == r ? dout[o] : T(0);
  }
}

}  // namespace

void reduce(ReduceOp op, DType dt, const void* x, void* out, int64_t* argmax, int64_t M, int64_t R, int64_t I) {
  if (M * I == 0) return;
  SANF_DISPATCH_FLOAT(dt, op == ReduceOp::Sum ? "sum" : "max", [&] {
    const auto* px = static_cast<const scalar_t*>(x);
    auto* po = static_cast<scalar_t*>(out);
    if (I == 1) {
      const unsigned blocks = unsigned(std::min<int64_t>(M, 1 << 16));
      if (op == ReduceOp::Sum) {
        sum_rows_kernel<<<blocks, row_threads(R)>>>(px, po, M, R);
      } else {
        max_rows_kernel<<<blocks, row_threads(R)>>>(px, po, argmax, M, R);
      }
    } else {
      const int64_t tasks = M * ((I + kColX - 1) / kColX);
      const unsigned blocks = unsigned(std::min<int64_t>(tasks, 1 << 16));
      reduce_cols_kernel<<<blocks, dim3(kColX, kColY)>>>(op, px, po, argmax, M, R, I);
    }
    SANF_CUDA_LAUNCH_CHECK();
  });
}

void reduce_max_backward(DType dt, const void* dout, const int64_t* argmax, void* dx, int64_t M, int64_t R, int64_t I) {
  const int64_t n = M * R * I;
  if (n == 0) return;
  SANF_DISPATCH_FLOAT(dt, "max backward", [&] {
    max_backward_kernel<<<grid_for(n), kThreads>>>(static_cast<const scalar_t*>(dout), argmax,
                                                   static_cast<scalar_t*>(dx), R, I, n);
    SANF_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace sanf::kernels::cuda
