// kernels/cpu/pool.cpp: adaptive average pooling of a (B, Gh*Gw, D) token grid to (B, gh*gw, D).
//
// Output cell (oy, ox) covers grid rows [start(oy, Gh, gh), end(oy, Gh, gh)) and columns likewise, with
// start(i, G, g) = floor(i*G/g) and end(i, G, g) = ceil((i+1)*G/g): PyTorch's adaptive_avg_pool2d cells.
// When g divides G these tile the grid; otherwise neighbouring cells may share a row or column.
//   forward:   y[b, cell] = mean of x[b, token] over the cell's tokens (summed in double)
//   backward:  dx[b, token] = sum over the cells c that contain the token of dy[b, c] / |c|
// The backward gathers (each task owns one input token and looks for the cells holding it) rather than
// scattering from the output cells, so overlapping cells never race and dx needs no zeroing pass.
#include <algorithm>
#include <vector>

#include "kernels/pool.h"

namespace sanf::kernels::cpu {

namespace {
constexpr int64_t kParallelElems = int64_t(1) << 15;

int64_t cell_start(int64_t i, int64_t G, int64_t g) { return (i * G) / g; }
int64_t cell_end(int64_t i, int64_t G, int64_t g) { return ((i + 1) * G + g - 1) / g; }

template <typename T>
void pool_typed(const T* x, T* y, int64_t B, int64_t Gh, int64_t Gw, int64_t gh, int64_t gw, int64_t D) {
#pragma omp parallel if (B * Gh * Gw * D > kParallelElems)
  {
    std::vector<double> acc(static_cast<size_t>(D));
#pragma omp for
    for (int64_t task = 0; task < B * gh * gw; ++task) {
      const int64_t b = task / (gh * gw), oy = (task / gw) % gh, ox = task % gw;
      const int64_t y0 = cell_start(oy, Gh, gh), y1 = cell_end(oy, Gh, gh);
      const int64_t x0 = cell_start(ox, Gw, gw), x1 = cell_end(ox, Gw, gw);
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t iy = y0; iy < y1; ++iy)
        for (int64_t ix = x0; ix < x1; ++ix) {
          const T* tok = x + (b * Gh * Gw + iy * Gw + ix) * D;
          for (int64_t d = 0; d < D; ++d) acc[size_t(d)] += double(tok[d]);
        }
      const double inv = 1.0 / double((y1 - y0) * (x1 - x0));
      T* out = y + task * D;
      for (int64_t d = 0; d < D; ++d) out[d] = T(acc[size_t(d)] * inv);
    }
  }
}

template <typename T>
void pool_backward_typed(const T* dy, T* dx, int64_t B, int64_t Gh, int64_t Gw, int64_t gh, int64_t gw, int64_t D) {
#pragma omp parallel for if (B * Gh * Gw * D > kParallelElems)
  for (int64_t task = 0; task < B * Gh * Gw; ++task) {
    const int64_t b = task / (Gh * Gw), iy = (task / Gw) % Gh, ix = task % Gw;
    T* out = dx + task * D;
    for (int64_t d = 0; d < D; ++d) out[d] = T(0);
    for (int64_t oy = 0; oy < gh; ++oy) {
      const int64_t y0 = cell_start(oy, Gh, gh), y1 = cell_end(oy, Gh, gh);
      if (iy < y0 || iy >= y1) continue;
      for (int64_t ox = 0; ox < gw; ++ox) {
        const int64_t x0 = cell_start(ox, Gw, gw), x1 = cell_end(ox, Gw, gw);
        if (ix < x0 || ix >= x1) continue;
        const T inv = T(1.0 / double((y1 - y0) * (x1 - x0)));
        const T* g = dy + (b * gh * gw + oy * gw + ox) * D;
        for (int64_t d = 0; d < D; ++d) out[d] += g[d] * inv;
      }
    }
  }
}
}  // namespace

void avg_pool_tokens(DType dt, const void* x, void* y, int64_t B, int64_t Gh, int64_t Gw, int64_t gh, int64_t gw,
                     int64_t D) {
  SANF_DISPATCH_FLOAT(dt, "adaptive_avg_pool_tokens", [&] {
    pool_typed(static_cast<const scalar_t*>(x), static_cast<scalar_t*>(y), B, Gh, Gw, gh, gw, D);
  });
}

void avg_pool_tokens_backward(DType dt, const void* dy, void* dx, int64_t B, int64_t Gh, int64_t Gw, int64_t gh,
                              int64_t gw, int64_t D) {
  SANF_DISPATCH_FLOAT(dt, "adaptive_avg_pool_tokens backward", [&] {
    pool_backward_typed(static_cast<const scalar_t*>(dy), static_cast<scalar_t*>(dx), B, Gh, Gw, gh, gw, D);
  });
}

}  // namespace sanf::kernels::cpu
