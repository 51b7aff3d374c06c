// kernels/cuda/pool.cu: adaptive 2-D average pooling of a (B, Gh*Gw, D) token grid to (B, gh*gw, D), and
// its backward. Same cells and arithmetic as kernels/cpu/pool.cpp:
//   cell (oy, ox) covers rows [start(oy, Gh, gh), end(oy, Gh, gh)) and columns likewise, with
//   start(o, G, g) = floor(o*G/g), end(o, G, g) = ceil((o+1)*G/g)   (PyTorch's adaptive_avg_pool2d)
//   forward:   y[b, cell, d] = (sum over the cell's tokens of x[b, token, d], in double) / |cell|
//   backward:  dx[b, token, d] = sum over the cells c holding the token of dy[b, c, d] / |c|
// One thread per output element (b, cell, d) in the forward and per input element (b, token, d) in the
// backward; d is the fastest index, so a warp reads 32 consecutive channels of one token. The backward is a
// gather: each thread finds the few cells that contain its token, so overlapping cells need no atomics and
// dx is written exactly once. The cells holding row iy are exactly oy in
//   [floor(iy*gh/Gh), ceil((iy+1)*gh/Gh) - 1]
// (start(oy) <= iy  <=>  oy*Gh < (iy+1)*gh;  end(oy) > iy  <=>  (oy+1)*Gh > iy*gh); the loop checks the
// membership again anyway, so the range only has to be wide enough.
#include "kernels/cuda/common.cuh"
#include "kernels/pool.h"

namespace sanf::kernels::cuda {

using namespace cuda_detail;

namespace {

__device__ __forceinline__ int64_t cell_start(int64_t o, int64_t G, int64_t g) { return (o * G) / g; }
__device__ __forceinline__ int64_t cell_end(int64_t o, int64_t G, int64_t g) { return ((o + 1) * G + g - 1) / g; }

template <typename T>
__global__ void pool_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t Gh, int64_t Gw, int64_t gh, int64_t gw,
                            int64_t D, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t d = e % D, cell = (e / D) % (gh * gw), b = e / (D * gh * gw);
    const int64_t oy = cell / gw, ox = cell % gw;
    const int64_t y0 = cell_start(oy, Gh, gh), y1 = cell_end(oy, Gh, gh);
    const int64_t x0 = cell_start(ox, Gw, gw), x1 = cell_end(ox, Gw, gw);
    double acc = 0;
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = x0; ix < x1; ++ix) acc += double(x[(b * Gh * Gw + iy * Gw + ix) * D + d]);
    y[e] = T(acc * (1.0 / double((y1 - y0) * (x1 - x0))));
  }
}

template <typename T>
__global__ void pool_backward_kernel(const T* __restrict__ dy, T* __restrict__ dx, int64_t Gh, int64_t Gw, int64_t gh,
                                     int64_t gw, int64_t D, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t d = e % D, tok = (e / D) % (Gh * Gw), b = e / (D * Gh * Gw);
    const int64_t iy = tok / Gw, ix = tok % Gw;
    // Candidate cells (see the top), widened by one and clamped; membership is checked below.
    const int64_t oy_lo = max(int64_t(0), (iy * gh) / Gh - 1);
    const int64_t oy_hi = min(gh - 1, ((iy + 1) * gh + Gh - 1) / Gh);
    const int64_t ox_lo = max(int64_t(0), (ix * gw) / Gw - 1);
    const int64_t ox_hi = min(gw - 1, ((ix + 1) * gw + Gw - 1) / Gw);
    T acc = T(0);
    for (int64_t oy = oy_lo; oy <= oy_hi; ++oy) {
      const int64_t y0 = cell_start(oy, Gh, gh), y1 = cell_end(oy, Gh, gh);
      if (iy < y0 || iy >= y1) continue;
      for (int64_t ox = ox_lo; ox <= ox_hi; ++ox) {
        const int64_t x0 = cell_start(ox, Gw, gw), x1 = cell_end(ox, Gw, gw);
        if (ix < x0 || ix >= x1) continue;
        const T inv = T(1.0 / double((y1 - y0) * (x1 - x0)));
        acc += dy[(b * gh * gw + oy * gw + ox) * D + d] * inv;
      }
    }
    dx[e] = acc;
  }
}

}  // namespace

void avg_pool_tokens(DType dt, const void* x, void* y, int64_t B, int64_t Gh, int64_t Gw, int64_t gh, int64_t gw,
                     int64_t D) {
  const int64_t n = B * gh * gw * D;
  if (n == 0) return;
  SANF_DISPATCH_FLOAT(dt, "adaptive_avg_pool_tokens", [&] {
    pool_kernel<<<grid_for(n), kThreads>>>(static_cast<const scalar_t*>(x), static_cast<scalar_t*>(y), Gh, Gw, gh, gw,
                                           D, n);
    SANF_CUDA_LAUNCH_CHECK();
  });
}

void avg_pool_tokens_backward(DType dt, const void* dy, void* dx, int64_t B, int64_t Gh, int64_t Gw, int64_t gh,
                              int64_t gw, int64_t D) {
  const int64_t n = B * Gh * Gw * D;
  if (n == 0) return;
  SANF_DISPATCH_FLOAT(dt, "adaptive_avg_pool_tokens backward", [&] {
    pool_backward_kernel<<<grid_for(n), kThreads>>>(static_cast<const scalar_t*>(dy), static_cast<scalar_t*>(dx), Gh,
                                                    Gw, gh, gw, D, n);
    SANF_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace sanf::kernels::cuda
