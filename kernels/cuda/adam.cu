// kernels/cuda/adam.cu: the fused Adam update on the GPU (formula in kernels/adam.h).
//
// One thread per parameter element, in a grid-stride loop, each running kernels/adam.h's adam_element with
// the step's constants from adam_consts: the CPU's operations, in the CPU's order.
//
// adam_multi packs up to kSlotsPerLaunch parameters into the kernel's arguments (pointers, sizes and each
// one's constants: under 2.5 KiB, inside the 4 KiB every CUDA version accepts) and launches a 2-D grid:
// blockIdx.y picks the parameter, blockIdx.x walks it grid-stride. The grid's x extent is the largest
// parameter's, so the blocks of a smaller one find nothing to do past its end.
#include <cmath>

#include "kernels/adam.h"
#include "kernels/cuda/common.cuh"

namespace sanf::kernels::cuda {

using namespace cuda_detail;

namespace {

template <typename T>
__global__ void adam_kernel(T* p, const T* grad, T* m, T* v, int64_t n, AdamConsts<T> k) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    adam_element(k, p, grad, m, v, i);
}

constexpr int kSlotsPerLaunch = 24;

template <typename T>
struct AdamBatch {
  T* p[kSlotsPerLaunch];
  const T* g[kSlotsPerLaunch];
  T* m[kSlotsPerLaunch];
  T* v[kSlotsPerLaunch];
  int64_t n[kSlotsPerLaunch];
  AdamConsts<T> k[kSlotsPerLaunch];
};
static_assert(sizeof(AdamBatch<double>) <= 4000, "adam_multi's kernel arguments must stay under 4 KiB");

template <typename T>
__global__ void adam_multi_kernel(AdamBatch<T> b) {
  const int s = blockIdx.y;
  const int64_t n = b.n[s];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    adam_element(b.k[s], b.p[s], b.g[s], b.m[s], b.v[s], i);
}

}  // namespace

void adam_multi(DType dt, const AdamSlot* slots, int64_t count, const AdamArgs& a) {
  SANF_DISPATCH_FLOAT(dt, "adam", [&] {
    using T = scalar_t;
    for (int64_t first = 0; first < count; first += kSlotsPerLaunch) {
      AdamBatch<T> b{};
      int used = 0;
      int64_t widest = 0;
      for (int64_t i = first; i < std::min(count, first + kSlotsPerLaunch); ++i) {
        const AdamSlot& sl = slots[i];
        if (sl.n == 0) continue;
        AdamArgs ai = a;
        ai.step = sl.step;
        b.p[used] = static_cast<T*>(sl.p), b.g[used] = static_cast<const T*>(sl.grad);
        b.m[used] = static_cast<T*>(sl.m), b.v[used] = static_cast<T*>(sl.v);
        b.n[used] = sl.n, b.k[used] = adam_consts<T>(ai);
        widest = std::max(widest, sl.n);
        ++used;
      }
      if (used == 0) continue;
      adam_multi_kernel<<<dim3(grid_for(widest), unsigned(used)), kThreads>>>(b);
      SANF_CUDA_LAUNCH_CHECK();
    }
  });
}

void adam(DType dt, void* p, const void* grad, void* m, void* v, int64_t n, const AdamArgs& a) {
  if (n == 0) return;
  SANF_DISPATCH_FLOAT(dt, "adam", [&] {
    using T = scalar_t;
    adam_kernel<<<grid_for(n), kThreads>>>(static_cast<T*>(p), static_cast<const T*>(grad), static_cast<T*>(m),
                                           static_cast<T*>(v), n, adam_consts<T>(a));
    SANF_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace sanf::kernels::cuda
