// kernels/cpu/layernorm.cpp: layer norm over the rows of a contiguous (rows, cols) block, and its backward.
//
// Forward, one row at a time (rows in parallel): two passes for the statistics (the mean first, then the
// mean squared deviation, which stays accurate when |mean| >> std, unlike E[x^2] - mean^2), both in double,
// then y_j = (x_j - mean) * rstd * w_j + b_j. mean and rstd are saved for the backward.
//
// Backward (formulas in kernels/layernorm.h), with xhat_j = (x_j - mean) * rstd recomputed from x:
//   dx: per row, two row sums (of g = dy * w and of g * xhat), then one pass for dx.
//   dw, db: sums over rows. Rows are cut into a fixed number of slabs (not one per thread), each slab sums
//   its rows into its own double buffer, and the slab buffers are added in slab order, so the result is the
//   same for any thread count and has no write races.
//
// The row sums run in double in kLanes interleaved lanes (lane_sum, kernels/cpu/loops.h), so every pass
// vectorises, and the row loops are compiled per ISA (SANF_CPU_CLONES); the order of every sum is fixed by
// the code, not by the ISA or the thread count (a multiply-add may be one FMA where the ISA has it:
// kernels/cpu/loops.h).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/loops.h"
#include "kernels/layernorm.h"

namespace sanf::kernels::cpu {

namespace {
constexpr int64_t kParallelElems = int64_t(1) << 15;

// O: T, or bf16 (layernorm_to_bf16: the T value rounded as it is stored, as to(y, BF16) rounds it).
template <typename T, typename O>
[[gnu::always_inline]] inline void layernorm_rows_t(const T* x, const T* w, const T* b, O* y, T* mean, T* rstd,
                                                    int64_t r0, int64_t r1, int64_t cols, double eps) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* xr = x + r * cols;
    O* yr = y + r * cols;
    const double mu = lane_sum(cols, [&](int64_t j) { return double(xr[j]); }) / double(cols);
    const double var = lane_sum(cols,
                                [&](int64_t j) {
                                  const double d = double(xr[j]) - mu;
                                  return d * d;
                                }) /
                       double(cols);
    const double rs = 1.0 / std::sqrt(var + eps);
    mean[r] = T(mu);
    rstd[r] = T(rs);
    for (int64_t j = 0; j < cols; ++j)
      store_from_double(yr, j, double(T(T((double(xr[j]) - mu) * rs) * w[j] + b[j])));
  }
}

SANF_CPU_CLONES void layernorm_rows(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd,
                                    int64_t r0, int64_t r1, int64_t cols, double eps) {
  layernorm_rows_t(x, w, b, y, mean, rstd, r0, r1, cols, eps);
}
SANF_CPU_CLONES void layernorm_rows(const double* x, const double* w, const double* b, double* y, double* mean,
                                    double* rstd, int64_t r0, int64_t r1, int64_t cols, double eps) {
  layernorm_rows_t(x, w, b, y, mean, rstd, r0, r1, cols, eps);
}

SANF_CPU_CLONES void layernorm_rows(const float* x, const float* w, const float* b, bf16* y, float* mean,
                                    float* rstd, int64_t r0, int64_t r1, int64_t cols, double eps) {
  layernorm_rows_t(x, w, b, y, mean, rstd, r0, r1, cols, eps);
}

template <typename T, typename O>
void layernorm_typed(const T* x, const T* w, const T* b, O* y, T* mean, T* rstd, int64_t rows, int64_t cols,
                     double eps) {
  parallel_for(
      rows, std::max<int64_t>(1, kGrainCheap / std::max<int64_t>(cols, 1)),
      [&](int64_t r0, int64_t r1) { layernorm_rows(x, w, b, y, mean, rstd, r0, r1, cols, eps); }, 1);
}

// One slab of the backward: dx for rows [r0, r1), and the slab's partial sums of dy * xhat and dy.
template <typename T>
[[gnu::always_inline]] inline void layernorm_backward_slab_t(const T* x, const T* w, const T* mean, const T* rstd,
                                                             const T* dy, T* dx, double* pw, double* pb, int64_t r0,
                                                             int64_t r1, int64_t cols) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* xr = x + r * cols;
    const T* dyr = dy + r * cols;
    T* dxr = dx + r * cols;
    const double mu = double(mean[r]), rs = double(rstd[r]);
    for (int64_t j = 0; j < cols; ++j) {
      const double xhat = (double(xr[j]) - mu) * rs;
      pw[j] += double(dyr[j]) * xhat;
      pb[j] += double(dyr[j]);
    }
    // mean_k(g_k) and mean_k(g_k * xhat_k), with g = dy * w.
    const double g_mean = lane_sum(cols, [&](int64_t j) { return double(dyr[j]) * double(w[j]); }) / double(cols);
    const double gx_mean =
        lane_sum(cols, [&](int64_t j) { return double(dyr[j]) * double(w[j]) * ((double(xr[j]) - mu) * rs); }) /
        double(cols);
    for (int64_t j = 0; j < cols; ++j) {
      const double xhat = (double(xr[j]) - mu) * rs, g = double(dyr[j]) * double(w[j]);
      dxr[j] = T(rs * (g - g_mean - xhat * gx_mean));
    }
  }
}

SANF_CPU_CLONES void layernorm_backward_slab(const float* x, const float* w, const float* mean, const float* rstd,
                                             const float* dy, float* dx, double* pw, double* pb, int64_t r0, int64_t r1,
                                             int64_t cols) {
  layernorm_backward_slab_t(x, w, mean, rstd, dy, dx, pw, pb, r0, r1, cols);
}
SANF_CPU_CLONES void layernorm_backward_slab(const double* x, const double* w, const double* mean, const double* rstd,
                                             const double* dy, double* dx, double* pw, double* pb, int64_t r0,
                                             int64_t r1, int64_t cols) {
  layernorm_backward_slab_t(x, w, mean, rstd, dy, dx, pw, pb, r0, r1, cols);
}

template <typename T>
void layernorm_backward_typed(const T* x, const T* w, const T* mean, const T* rstd, const T* dy, T* dx, T* dw, T* db,
                              int64_t rows, int64_t cols) {
  const bool big = rows * cols > kParallelElems;
  // Rows per slab: at least 16 rows, at most 64 slabs (independent of the thread count).
  const int64_t nslabs = std::max<int64_t>(1, std::min<int64_t>(64, rows / 16));
  const int64_t slab_rows = (rows + nslabs - 1) / nslabs;
  std::vector<double> part_w(size_t(nslabs * cols), 0.0), part_b(size_t(nslabs * cols), 0.0);

#pragma omp parallel for if (big)
  for (int64_t s = 0; s < nslabs; ++s) {
    const int64_t r_end = std::min(rows, (s + 1) * slab_rows);
    if (s * slab_rows < r_end)
      layernorm_backward_slab(x, w, mean, rstd, dy, dx, part_w.data() + s * cols, part_b.data() + s * cols,
                              s * slab_rows, r_end, cols);
  }
  // Add the slabs in order; columns in parallel.
#pragma omp parallel for if (big)
  for (int64_t j = 0; j < cols; ++j) {
    double sw = 0, sb = 0;
    for (int64_t s = 0; s < nslabs; ++s) sw += part_w[size_t(s * cols + j)], sb += part_b[size_t(s * cols + j)];
    dw[j] = T(sw);
    db[j] = T(sb);
  }
}
}  // namespace

void layernorm(DType dt, const void* x, const void* w, const void* b, void* y, void* mean, void* rstd, int64_t rows,
               int64_t cols, double eps) {
  SANF_DISPATCH_FLOAT(dt, "layer_norm", [&] {
    using T = scalar_t;
    layernorm_typed(static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b), static_cast<T*>(y),
                    static_cast<T*>(mean), static_cast<T*>(rstd), rows, cols, eps);
  });
}

void layernorm_to_bf16(const float* x, const float* w, const float* b, bf16* y, float* mean, float* rstd, int64_t rows,
                       int64_t cols, double eps) {
  layernorm_typed(x, w, b, y, mean, rstd, rows, cols, eps);
}

void layernorm_backward(DType dt, const void* x, const void* w, const void* mean, const void* rstd, const void* dy,
                        void* dx, void* dw, void* db, int64_t rows, int64_t cols) {
  SANF_DISPATCH_FLOAT(dt, "layer_norm backward", [&] {
    using T = scalar_t;
    layernorm_backward_typed(static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(mean),
                             static_cast<const T*>(rstd), static_cast<const T*>(dy), static_cast<T*>(dx),
                             static_cast<T*>(dw), static_cast<T*>(db), rows, cols);
  });
}

}  // namespace sanf::kernels::cpu
