// kernels/cpu/reduce.cpp: sum / max over the middle axis of (M, R, I), and max's backward.
//
// Sums accumulate in double (also for f32) so that long reductions (a loss over a dataset, a bias
// gradient over thousands of rows) do not drift. For I == 1 each output reads one contiguous row; for
// I > 1 the loop runs over r outside and i inside, so the inner loop streams contiguous memory.
#include <limits>
#include <vector>

#include "kernels/reduce.h"
#include "kernels/cpu/loops.h"

namespace sanf::kernels::cpu {

namespace {
template <typename T>
void reduce_typed(ReduceOp op, const T* x, T* out, int64_t* argmax, int64_t M, int64_t R, int64_t I) {
  const bool big = M * R * I > (1 << 15);
  if (I == 1) {
#pragma omp parallel for if (big)
    for (int64_t m = 0; m < M; ++m) {
      const T* row = x + m * R;
      if (op == ReduceOp::Sum) {
        double acc = 0;
        for (int64_t r = 0; r < R; ++r) acc += double(row[r]);
        out[m] = T(acc);
      } else {
        T best = R ? row[0] : -std::numeric_limits<T>::infinity();
        int64_t at = 0;
        for (int64_t r = 1; r < R; ++r)
          if (row[r] > best || (row[r] != row[r] && best == best)) best = row[r], at = r;  // NaN wins, as PyTorch
        out[m] = best;
        if (argmax) argmax[m] = at;
      }
    }
    return;
  }
  // I > 1: split the work over (m, block of i) so that M == 1 (e.g. a bias gradient) still uses all cores.
  constexpr int64_t kBlock = 256;
  const int64_t nblocks = (I + kBlock - 1) / kBlock;
#pragma omp parallel for if (big)
  for (int64_t task = 0; task < M * nblocks; ++task) {
    const int64_t m = task / nblocks, i0 = (task % nblocks) * kBlock, n = std::min(kBlock, I - i0);
    const T* base = x + m * R * I + i0;
    T* o = out + m * I + i0;
    if (op == ReduceOp::Sum) {
      double acc[kBlock] = {};
      for (int64_t r = 0; r < R; ++r)
        for (int64_t i = 0; i < n; ++i) acc[i] += double(base[r * I + i]);
      for (int64_t i = 0; i < n; ++i) o[i] = T(acc[i]);
    } else {
      int64_t* am = argmax ? argmax + m * I + i0 : nullptr;
      for (int64_t i = 0; i < n; ++i) {
        o[i] = R ? base[i] : -std::numeric_limits<T>::infinity();
        if (am) am[i] = 0;
      }
      for (int64_t r = 1; r < R; ++r)
        for (int64_t i = 0; i < n; ++i) {
          T v = base[r * I + i];
          if (v > o[i] || (v != v && o[i] == o[i])) {
            o[i] = v;
            if (am) am[i] = r;
          }
        }
    }
  }
}

template <typename T>
void max_backward_typed(const T* dout, const int64_t* argmax, T* dx, int64_t M, int64_t R, int64_t I) {
#pragma omp parallel for if (M * R * I > (1 << 15))
  for (int64_t m = 0; m < M; ++m) {
    T* d = dx + m * R * I;
    for (int64_t k = 0; k < R * I; ++k) d[k] = T(0);
    for (int64_t i = 0; i < I; ++i) d[argmax[m * I + i] * I + i] = dout[m * I + i];
  }
}
template <typename T>
double sum_squares_typed(const SquaresPart* parts, int64_t count) {
  struct Chunk {
    const T* x;
    int64_t n;
  };
  std::vector<Chunk> chunks;
  int64_t elements = 0;
  for (int64_t i = 0; i < count; ++i) {
    elements += parts[i].n;
    for (int64_t o = 0; o < parts[i].n; o += kSquaresChunk)
      chunks.push_back({static_cast<const T*>(parts[i].x) + o, std::min(kSquaresChunk, parts[i].n - o)});
  }
  std::vector<double> part_sums(chunks.size());
  const int64_t nchunks = int64_t(chunks.size());
  // Threads only for enough work to pay for them (many small gradients are many chunks but little work).
#pragma omp parallel for schedule(static) if (nchunks > 1 && elements >= 2 * kGrainCheap)
  for (int64_t c = 0; c < nchunks; ++c) {
    const T* x = chunks[size_t(c)].x;
    part_sums[size_t(c)] = lane_sum(chunks[size_t(c)].n, [&](int64_t j) {
      const double v = double(x[j]);
      return v * v;
    });
  }
  double total = 0;
  for (double p : part_sums) total += p;
  return total;
}

}  // namespace

double sum_squares(DType dt, const SquaresPart* parts, int64_t count) {
  double r = 0;
  SANF_DISPATCH_FLOAT(dt, "sum_squares", [&] { r = sum_squares_typed<scalar_t>(parts, count); });
  return r;
}

void reduce(ReduceOp op, DType dt, const void* x, void* out, int64_t* argmax, int64_t M, int64_t R, int64_t I) {
  SANF_DISPATCH_FLOAT(dt, op == ReduceOp::Sum ? "sum" : "max", [&] {
    reduce_typed(op, static_cast<const scalar_t*>(x), static_cast<scalar_t*>(out), argmax, M, R, I);
  });
}

void reduce_max_backward(DType dt, const void* dout, const int64_t* argmax, void* dx, int64_t M, int64_t R,
                         int64_t I) {
  SANF_DISPATCH_FLOAT(dt, "max backward", [&] {
    max_backward_typed(static_cast<const scalar_t*>(dout), argmax, static_cast<scalar_t*>(dx), M, R, I);
  });
}

}  // namespace sanf::kernels::cpu
