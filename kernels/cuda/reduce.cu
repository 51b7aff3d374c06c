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
// Both split the reduced axis when the outputs alone are too few to fill the GPU (a full sum: M = 1, I = 1;
// a bias gradient: M = 1, I = 4096 over 12,608 rows): the R axis is cut into S fixed pieces (S depends only
// on the shape), a second grid dimension runs one piece each and writes a partial (a double sum, or a
// (value, r) pair) to scratch, and a second kernel combines each output's S partials in a fixed order. The
// result is therefore the same on every run.
// sum_squares (a gradient norm over a model's parameters): one block per kSquaresChunk-element chunk of any of
// up to kSquaresPerLaunch tensors whose pointers and sizes travel in the kernel's arguments (a block finds
// its tensor by a binary search over where each tensor's chunks start), a double partial per chunk, then one
// block adds the partials in a fixed order and the host reads the one double.
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

// ---- I == 1: one block per row (or per piece of a row) ----------------------------------------------------
// With S pieces (gridDim.y), block (x, y) reduces piece y = [y * piece, min(R, (y + 1) * piece)) of rows m;
// S == 1 writes the result itself, S > 1 a partial (part_sum, or part_val / part_idx) at m * S + y.

// A finished maximum into out[o] (and argmax[o]): R == 0 (the op rejects it; kept total as on the CPU)
// gives -inf at position 0.
template <typename T>
__device__ __forceinline__ void store_max(ArgMax<T> best, T* out, int64_t* argmax, int64_t o) {
  out[o] = best.r < 0 ? -std::numeric_limits<T>::infinity() : best.v;
  if (argmax) argmax[o] = best.r < 0 ? 0 : best.r;
}

template <typename T>
__global__ void sum_rows_kernel(const T* __restrict__ x, T* __restrict__ out, double* __restrict__ part_sum, int64_t M,
                                int64_t R, int64_t piece) {
  const int64_t r0 = blockIdx.y * piece, r1 = std::min(R, r0 + piece);
  for (int64_t m = blockIdx.x; m < M; m += gridDim.x) {
    const T* row = x + m * R;
    double acc = 0;
    for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x) acc += double(row[r]);
    acc = block_reduce(acc, SumOp{});
    if (threadIdx.x == 0) {
      if (gridDim.y == 1) {
        out[m] = T(acc);
      } else {
        part_sum[m * gridDim.y + blockIdx.y] = acc;
      }
    }
  }
}

template <typename T>
__global__ void max_rows_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t* __restrict__ argmax,
                                T* __restrict__ part_val, int64_t* __restrict__ part_idx, int64_t M, int64_t R,
                                int64_t piece) {
  const int64_t r0 = blockIdx.y * piece, r1 = std::min(R, r0 + piece);
  for (int64_t m = blockIdx.x; m < M; m += gridDim.x) {
    const T* row = x + m * R;
    ArgMax<T> best{T(0), -1};
    for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x) best = better(best, ArgMax<T>{row[r], r});
    best = block_reduce_argmax(best);
    if (threadIdx.x == 0) {
      if (gridDim.y == 1) {
        store_max(best, out, argmax, m);
      } else {
        part_val[m * gridDim.y + blockIdx.y] = best.v;
        part_idx[m * gridDim.y + blockIdx.y] = best.r;
      }
    }
  }
}

// ---- I > 1: (32 x 8) blocks over (m, 32 columns) ---------------------------------------------------------

constexpr int kColX = 32, kColY = 8;

// With S pieces (gridDim.y), block (x, y) walks only the rows of piece y and, when S > 1, writes partials at
// (m * S + y) * I + i.
template <typename T>
__global__ void reduce_cols_kernel(ReduceOp op, const T* __restrict__ x, T* __restrict__ out,
                                   int64_t* __restrict__ argmax, double* __restrict__ part_sum,
                                   T* __restrict__ part_val, int64_t* __restrict__ part_idx, int64_t M, int64_t R,
                                   int64_t I, int64_t piece) {
  __shared__ double sums[kColY][kColX];
  __shared__ T vals[kColY][kColX];
  __shared__ int64_t idx[kColY][kColX];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t col_blocks = (I + kColX - 1) / kColX;
  const int64_t r0 = blockIdx.y * piece, r1 = std::min(R, r0 + piece);
  const bool partial = gridDim.y > 1;
  for (int64_t task = blockIdx.x; task < M * col_blocks; task += gridDim.x) {
    const int64_t m = task / col_blocks, i = (task % col_blocks) * kColX + tx;
    const T* base = x + m * R * I + i;  // x[m, 0, i]; only dereferenced when i < I
    if (op == ReduceOp::Sum) {
      double acc = 0;
      if (i < I)
        for (int64_t r = r0 + ty; r < r1; r += kColY) acc += double(base[r * I]);
      sums[ty][tx] = acc;
    } else {
      ArgMax<T> best{T(0), -1};
      if (i < I)
        for (int64_t r = r0 + ty; r < r1; r += kColY) best = better(best, ArgMax<T>{base[r * I], r});
      vals[ty][tx] = best.v;
      idx[ty][tx] = best.r;
    }
    __syncthreads();
    if (ty == 0 && i < I) {
      const int64_t at = (m * gridDim.y + blockIdx.y) * I + i;  // the partial's place (S > 1)
      if (op == ReduceOp::Sum) {
        double acc = sums[0][tx];
        for (int y = 1; y < kColY; ++y) acc += sums[y][tx];
        if (partial) {
          part_sum[at] = acc;
        } else {
          out[m * I + i] = T(acc);
        }
      } else {
        ArgMax<T> best{vals[0][tx], idx[0][tx]};
        for (int y = 1; y < kColY; ++y) best = better(best, ArgMax<T>{vals[y][tx], idx[y][tx]});
        if (partial) {
          part_val[at] = best.v;
          part_idx[at] = best.r;
        } else {
          store_max(best, out, argmax, m * I + i);
        }
      }
    }
    __syncthreads();  // the shared partials are rewritten by the next task
  }
}

// The second kernel of a split reduction: output (m, i) combines its S partials, at (m * S + s) * I + i, in
// piece order. One block per output when I == 1 (S can be large: its threads stride over the partials in a
// fixed pattern and meet in a block reduction); else one thread per output.
template <typename T>
__global__ void combine_partials_kernel(ReduceOp op, const double* __restrict__ part_sum,
                                        const T* __restrict__ part_val, const int64_t* __restrict__ part_idx,
                                        T* __restrict__ out, int64_t* __restrict__ argmax, int64_t M, int64_t S,
                                        int64_t I) {
  if (I == 1) {
    for (int64_t m = blockIdx.x; m < M; m += gridDim.x) {
      if (op == ReduceOp::Sum) {
        double acc = 0;
        for (int64_t s = threadIdx.x; s < S; s += blockDim.x) acc += part_sum[m * S + s];
        acc = block_reduce(acc, SumOp{});
        if (threadIdx.x == 0) out[m] = T(acc);
      } else {
        ArgMax<T> best{T(0), -1};
        for (int64_t s = threadIdx.x; s < S; s += blockDim.x)
          best = better(best, ArgMax<T>{part_val[m * S + s], part_idx[m * S + s]});
        best = block_reduce_argmax(best);
        if (threadIdx.x == 0) store_max(best, out, argmax, m);
      }
    }
    return;
  }
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < M * I; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t m = o / I, i = o % I;
    if (op == ReduceOp::Sum) {
      double acc = 0;
      for (int64_t s = 0; s < S; ++s) acc += part_sum[(m * S + s) * I + i];
      out[o] = T(acc);
    } else {
      ArgMax<T> best{T(0), -1};
      for (int64_t s = 0; s < S; ++s)
        best = better(best, ArgMax<T>{part_val[(m * S + s) * I + i], part_idx[(m * S + s) * I + i]});
      store_max(best, out, argmax, o);
    }
  }
}

// How many pieces to cut R into: enough that about 1024 blocks run, when the outputs alone give fewer, but
// no more than R / kMinPiece; at most 1024 pieces. Depends on the shape alone. The pieces are ceil(R / S)
// rows each, so the last ones can be empty (R = 66,049 gives S = 258 pieces of 257: the last starts at R);
// an empty piece's partial is a sum of 0, or a maximum with no position, which the combining step skips.
constexpr int64_t kMinPiece = 256;
int64_t pieces_for(int64_t blocks, int64_t R) {
  if (blocks >= 1024 || R < 2 * kMinPiece) return 1;
  return std::clamp<int64_t>(std::min((1024 + blocks - 1) / blocks, R / kMinPiece), 1, 1024);
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

constexpr int kSquaresPerLaunch = 64;

template <typename T>
struct SquaresBatch {
  const T* x[kSquaresPerLaunch];
  int64_t n[kSquaresPerLaunch];
  int64_t first[kSquaresPerLaunch];  // the first of this launch's chunks that belongs to tensor i
  int count;
};

template <typename T>
__global__ void sum_squares_chunks_kernel(SquaresBatch<T> b, double* __restrict__ partials) {
  const int64_t c = blockIdx.x;
  int lo = 0, hi = b.count - 1;  // the last tensor whose chunks start at or before c (each has at least one)
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (b.first[mid] <= c) lo = mid;
    else hi = mid - 1;
  }
  const int64_t start = (c - b.first[lo]) * kSquaresChunk;
  const int64_t len = b.n[lo] - start < kSquaresChunk ? b.n[lo] - start : kSquaresChunk;
  const T* x = b.x[lo] + start;
  double s = 0;
  for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
    const double v = double(x[j]);
    s += v * v;
  }
  s = block_reduce(s, SumOp{});
  if (threadIdx.x == 0) partials[c] = s;
}

__global__ void sum_partials_kernel(const double* __restrict__ partials, int64_t n, double* __restrict__ out) {
  double s = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += partials[j];
  s = block_reduce(s, SumOp{});
  if (threadIdx.x == 0) *out = s;
}

}  // namespace

double sum_squares(DType dt, const SquaresPart* parts, int64_t count) {
  int64_t chunks = 0;
  for (int64_t i = 0; i < count; ++i) chunks += squares_chunks(parts[i].n);
  if (chunks == 0) return 0.0;
  DeviceScratch scratch((chunks + 1) * int64_t(sizeof(double)));
  auto* partials = static_cast<double*>(scratch.p);
  SANF_DISPATCH_FLOAT(dt, "sum_squares", [&] {
    using T = scalar_t;
    int64_t done = 0;  // chunks launched so far: this launch's partials start there
    for (int64_t i = 0; i < count;) {
      SquaresBatch<T> b{};
      int64_t mine = 0;
      for (; i < count && b.count < kSquaresPerLaunch; ++i) {
        if (parts[i].n <= 0) continue;
        b.x[b.count] = static_cast<const T*>(parts[i].x), b.n[b.count] = parts[i].n, b.first[b.count] = mine;
        mine += squares_chunks(parts[i].n);
        ++b.count;
      }
      if (mine == 0) continue;
      SANF_CHECK(mine < (int64_t(1) << 31), "[sum_squares] ", mine, " chunks in one launch");
      sum_squares_chunks_kernel<<<unsigned(mine), kThreads>>>(b, partials + done);
      SANF_CUDA_LAUNCH_CHECK();
      done += mine;
    }
  });
  sum_partials_kernel<<<1, kThreads>>>(partials, chunks, partials + chunks);
  SANF_CUDA_LAUNCH_CHECK();
  double r = 0;
  cuda_memcpy(&r, partials + chunks, int64_t(sizeof(double)), Device::CPU, Device::CUDA);
  return r;
}

void reduce(ReduceOp op, DType dt, const void* x, void* out, int64_t* argmax, int64_t M, int64_t R, int64_t I) {
  if (M * I == 0) return;
  SANF_DISPATCH_FLOAT(dt, op == ReduceOp::Sum ? "sum" : "max", [&] {
    using T = scalar_t;
    const auto* px = static_cast<const T*>(x);
    auto* po = static_cast<T*>(out);
    const int64_t tasks = I == 1 ? M : M * ((I + kColX - 1) / kColX);  // blocks the outputs alone give
    const unsigned blocks = row_blocks(tasks);
    const int64_t S = pieces_for(tasks, R), piece = (R + S - 1) / S;
    // Partials of a split reduction: sums in double, maxima as (value, r).
    const int64_t nparts = S > 1 ? M * S * I : 0;
    DeviceScratch scratch(nparts * int64_t(op == ReduceOp::Sum ? sizeof(double) : sizeof(T) + sizeof(int64_t)));
    auto* part_sum = static_cast<double*>(scratch.p);
    auto* part_idx = static_cast<int64_t*>(scratch.p);
    auto* part_val = reinterpret_cast<T*>(part_idx + nparts);
    const dim3 grid(blocks, unsigned(S));
    if (I == 1) {
      if (op == ReduceOp::Sum) {
        sum_rows_kernel<<<grid, row_threads(piece)>>>(px, po, part_sum, M, R, piece);  // piece == R when S == 1
      } else {
        max_rows_kernel<<<grid, row_threads(piece)>>>(px, po, argmax, part_val, part_idx, M, R, piece);
      }
    } else {
      reduce_cols_kernel<<<grid, dim3(kColX, kColY)>>>(op, px, po, argmax, part_sum, part_val, part_idx, M, R, I,
                                                       piece);
    }
    SANF_CUDA_LAUNCH_CHECK();
    if (S > 1) {
      const unsigned cblocks = I == 1 ? row_blocks(M) : grid_for(M * I);
      combine_partials_kernel<<<cblocks, kThreads>>>(op, part_sum, part_val, part_idx, po, argmax, M, S, I);
      SANF_CUDA_LAUNCH_CHECK();
    }
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
