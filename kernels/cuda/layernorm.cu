// kernels/cuda/layernorm.cu: layer norm over the last axis of (rows, cols), forward and backward.
//
// Same arithmetic as kernels/cpu/layernorm.cpp (formulas in kernels/layernorm.h): row statistics and the
// backward's row sums are accumulated in double, also for f32.
//
// Forward: one block per row (grid-stride over rows), the block's threads stride over the columns.
//   pass 1: mean = block sum of x / C
//   pass 2: var = block sum of (x - mean)^2 / C   (two passes: accurate when |mean| >> std)
//   pass 3: y_j = (x_j - mean) * rstd * w_j + b_j; thread 0 saves mean and rstd for the backward.
//
// Backward, two parts:
//   dx: one block per row: two block sums, of g = dy * w and of g * xhat (xhat recomputed from x, mean,
//       rstd), then dx_j = rstd * (g_j - mean(g) - xhat_j * mean(g * xhat)).
//   dw = sum over rows of dy * xhat, db = sum over rows of dy: column sums, computed without atomics so
//       they are the same on every run. The rows are cut into a fixed number of slabs (as on the CPU: at
//       least 16 rows each, at most 64 slabs):
//         kernel 1, grid (column blocks of 32, slabs), block (32 x 8): threadIdx.x is the column (coalesced
//                   reads of a row), threadIdx.y walks the slab's rows y, y + 8, ...; the 8 partials per
//                   column are added in a fixed order in shared memory and written to a per-slab buffer;
//         kernel 2: one thread per column adds the slab partials in slab order.
#include <cmath>

#include "core/tensor.h"
#include "kernels/cuda/common.cuh"
#include "kernels/layernorm.h"

namespace sanf::kernels::cuda {

using namespace cuda_detail;

namespace {

// O: T, or bf16 for layernorm_to_bf16 (the T value rounded as it is stored, as to(y, BF16) would).
template <typename T, typename O>
__global__ void layernorm_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                                 O* __restrict__ y, T* __restrict__ mean, T* __restrict__ rstd, int64_t rows,
                                 int64_t cols, double eps) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * cols;
    O* yr = y + row * cols;
    double s = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += double(xr[j]);
    const double mu = block_reduce(s, SumOp{}) / double(cols);
    double v = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const double d = double(xr[j]) - mu;
      v += d * d;
    }
    const double var = block_reduce(v, SumOp{}) / double(cols);
    const double rs = 1.0 / std::sqrt(var + eps);
    if (threadIdx.x == 0) {
      mean[row] = T(mu);
      rstd[row] = T(rs);
    }
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
      store_from_double(yr, j, double(T(T((double(xr[j]) - mu) * rs) * w[j] + b[j])));
  }
}

template <typename T>
__global__ void layernorm_dx_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ mean,
                                    const T* __restrict__ rstd, const T* __restrict__ dy, T* __restrict__ dx,
                                    int64_t rows, int64_t cols) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * cols;
    const T* dyr = dy + row * cols;
    T* dxr = dx + row * cols;
    const double mu = double(mean[row]), rs = double(rstd[row]);
    double sg = 0, sgx = 0;  // sums of g and g * xhat
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const double xhat = (double(xr[j]) - mu) * rs, g = double(dyr[j]) * double(w[j]);
      sg += g;
      sgx += g * xhat;
    }
    const double g_mean = block_reduce(sg, SumOp{}) / double(cols);
    const double gx_mean = block_reduce(sgx, SumOp{}) / double(cols);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const double xhat = (double(xr[j]) - mu) * rs, g = double(dyr[j]) * double(w[j]);
      dxr[j] = T(rs * (g - g_mean - xhat * gx_mean));
    }
  }
}

constexpr int kColX = 32, kColY = 8;

// Kernel 1 of dw/db: part_w[s, j] = sum over the rows r of slab s of dy[r, j] * xhat[r, j]; part_b likewise
// with dy. blockIdx.x: a block of 32 columns; blockIdx.y: the slab.
template <typename T>
__global__ void layernorm_dwdb_partial_kernel(const T* __restrict__ x, const T* __restrict__ mean,
                                              const T* __restrict__ rstd, const T* __restrict__ dy,
                                              double* __restrict__ part_w, double* __restrict__ part_b, int64_t rows,
                                              int64_t cols, int64_t slab_rows) {
  __shared__ double sw[kColY][kColX], sb[kColY][kColX];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t j = blockIdx.x * int64_t(kColX) + tx, slab = blockIdx.y;
  const int64_t r0 = slab * slab_rows, r1 = std::min(rows, r0 + slab_rows);
  double pw = 0, pb = 0;
  if (j < cols) {
    for (int64_t r = r0 + ty; r < r1; r += kColY) {
      const double g = double(dy[r * cols + j]);
      const double xhat = (double(x[r * cols + j]) - double(mean[r])) * double(rstd[r]);
      pw += g * xhat;
      pb += g;
    }
  }
  sw[ty][tx] = pw;
  sb[ty][tx] = pb;
  __syncthreads();
  if (ty == 0 && j < cols) {
    for (int k = 1; k < kColY; ++k) pw += sw[k][tx], pb += sb[k][tx];  // pw, pb hold row 0's partials
    part_w[slab * cols + j] = pw;
    part_b[slab * cols + j] = pb;
  }
}

// Kernel 2 of dw/db: one thread per column adds the slab partials in slab order.
template <typename T>
__global__ void layernorm_dwdb_final_kernel(const double* __restrict__ part_w, const double* __restrict__ part_b,
                                            T* __restrict__ dw, T* __restrict__ db, int64_t cols, int64_t nslabs) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < cols; j += int64_t(gridDim.x) * blockDim.x) {
    double w = 0, b = 0;
    for (int64_t s = 0; s < nslabs; ++s) w += part_w[s * cols + j], b += part_b[s * cols + j];
    dw[j] = T(w);
    db[j] = T(b);
  }
}

}  // namespace

void layernorm(DType dt, const void* x, const void* w, const void* b, void* y, void* mean, void* rstd, int64_t rows,
               int64_t cols, double eps) {
  if (rows == 0 || cols == 0) return;
  SANF_DISPATCH_FLOAT(dt, "layer_norm", [&] {
    using T = scalar_t;
    layernorm_kernel<<<row_blocks(rows), row_threads(cols)>>>(
        static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b), static_cast<T*>(y),
        static_cast<T*>(mean), static_cast<T*>(rstd), rows, cols, eps);
    SANF_CUDA_LAUNCH_CHECK();
  });
}

void layernorm_to_bf16(const float* x, const float* w, const float* b, bf16* y, float* mean, float* rstd, int64_t rows,
                       int64_t cols, double eps) {
  if (rows == 0 || cols == 0) return;
  layernorm_kernel<<<row_blocks(rows), row_threads(cols)>>>(x, w, b, y, mean, rstd, rows, cols, eps);
  SANF_CUDA_LAUNCH_CHECK();
}

void layernorm_backward(DType dt, const void* x, const void* w, const void* mean, const void* rstd, const void* dy,
                        void* dx, void* dw, void* db, int64_t rows, int64_t cols) {
  if (cols == 0) return;
  SANF_DISPATCH_FLOAT(dt, "layer_norm backward", [&] {
    using T = scalar_t;
    const auto* px = static_cast<const T*>(x);
    const auto* pmean = static_cast<const T*>(mean);
    const auto* prstd = static_cast<const T*>(rstd);
    const auto* pdy = static_cast<const T*>(dy);
    if (rows > 0) {
      layernorm_dx_kernel<<<row_blocks(rows), row_threads(cols)>>>(px, static_cast<const T*>(w), pmean, prstd, pdy,
                                                                   static_cast<T*>(dx), rows, cols);
      SANF_CUDA_LAUNCH_CHECK();
    }
    // The slab count depends only on rows, so the summation order (and the result) is fixed.
    const int64_t nslabs = std::max<int64_t>(1, std::min<int64_t>(64, rows / 16));
    const int64_t slab_rows = (rows + nslabs - 1) / nslabs;
    DeviceScratch part(2 * nslabs * cols * int64_t(sizeof(double)));
    double* part_w = static_cast<double*>(part.p);
    double* part_b = part_w + nslabs * cols;
    const dim3 grid(unsigned((cols + kColX - 1) / kColX), unsigned(nslabs));
    layernorm_dwdb_partial_kernel<<<grid, dim3(kColX, kColY)>>>(px, pmean, prstd, pdy, part_w, part_b, rows, cols,
                                                                slab_rows);
    SANF_CUDA_LAUNCH_CHECK();
    layernorm_dwdb_final_kernel<<<grid_for(cols), kThreads>>>(part_w, part_b, static_cast<T*>(dw), static_cast<T*>(db),
                                                              cols, nslabs);
    SANF_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace sanf::kernels::cuda
