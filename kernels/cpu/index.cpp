// kernels/cpu/index.cpp: gather rows along the middle axis of (M, S, I), and the scatter-add that is its
// adjoint.
//
//   index_select:  out[m, j, :] = x[m, idx[j], :]       every (m, j) row is independent: parallel over them
//                                                       (over m alone when a row is one element, I == 1)
//   index_add:     dst[m, idx[j], :] += src[m, j, :]    repeated indices hit the same dst row, so two j must
//                                                       never run at once for one (m, i): the work is split
//                                                       over (m, block of i) and each task walks j in order
//                                                       (race-free, and the same sums for any thread count)
#include <algorithm>

#include "kernels/index.h"

namespace sanf::kernels::cpu {

namespace {
constexpr int64_t kParallelElems = int64_t(1) << 15;

template <typename T>
void index_select_typed(const T* x, const int64_t* idx, T* out, int64_t M, int64_t S, int64_t I, int64_t n_idx) {
  if (I == 1) {  // a gather of single elements (a channel permutation, x[..., perm]): one task per row m
#pragma omp parallel for if (M * n_idx > kParallelElems)
    for (int64_t m = 0; m < M; ++m) {
      const T* src = x + m * S;
      T* dst = out + m * n_idx;
      for (int64_t j = 0; j < n_idx; ++j) dst[j] = src[idx[j]];
    }
    return;
  }
#pragma omp parallel for if (M * n_idx * I > kParallelElems)
  for (int64_t task = 0; task < M * n_idx; ++task) {
    const int64_t m = task / n_idx, j = task % n_idx;
    const T* src = x + (m * S + idx[j]) * I;
    T* dst = out + task * I;
    for (int64_t i = 0; i < I; ++i) dst[i] = src[i];
  }
}

template <typename T>
void index_add_typed(const T* src, const int64_t* idx, T* dst, int64_t M, int64_t S, int64_t I, int64_t n_idx) {
  constexpr int64_t kBlock = 256;
  const int64_t nblocks = (I + kBlock - 1) / kBlock;
#pragma omp parallel for if (M * n_idx * I > kParallelElems)
  for (int64_t task = 0; task < M * nblocks; ++task) {
    const int64_t m = task / nblocks, i0 = (task % nblocks) * kBlock, n = std::min(kBlock, I - i0);
    for (int64_t j = 0; j < n_idx; ++j) {
      const T* s = src + (m * n_idx + j) * I + i0;
      T* d = dst + (m * S + idx[j]) * I + i0;
      for (int64_t i = 0; i < n; ++i) d[i] += s[i];
    }
  }
}
}  // namespace

void index_select(DType dt, const void* x, const int64_t* idx, void* out, int64_t M, int64_t S, int64_t I,
                  int64_t n_idx) {
  SANF_DISPATCH_FLOAT(dt, "index_select", [&] {
    index_select_typed(static_cast<const scalar_t*>(x), idx, static_cast<scalar_t*>(out), M, S, I, n_idx);
  });
}

void index_add(DType dt, const void* src, const int64_t* idx, void* dst, int64_t M, int64_t S, int64_t I,
               int64_t n_idx) {
  SANF_DISPATCH_FLOAT(dt, "index_add", [&] {
    index_add_typed(static_cast<const scalar_t*>(src), idx, static_cast<scalar_t*>(dst), M, S, I, n_idx);
  });
}

}  // namespace sanf::kernels::cpu
