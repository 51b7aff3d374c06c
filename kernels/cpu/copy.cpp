// kernels/cpu/copy.cpp: strided copy with dtype conversion, and fill.
//
// The copy walks the common shape with an odometer over the outer dims and a tight loop over the last dim.
// Same-dtype contiguous copies become one memcpy.
#include <cstring>

#include "kernels/copy.h"

namespace sanf::kernels::cpu {

namespace {
template <typename S, typename D>
void copy_typed(const S* src, const Layout& ls, D* dst, const Layout& ld) {
  const int nd = ls.ndim;
  if (nd == 0) {
    store_from_double(dst, 0, load_as_double(src, 0));
    return;
  }
  const int64_t inner = ls.shape[nd - 1], s_in = ls.strides[nd - 1], d_in = ld.strides[nd - 1];
  int64_t outer = 1;
  for (int d = 0; d < nd - 1; ++d) outer *= ls.shape[d];
#pragma omp parallel for if (outer * inner > (1 << 16))
  for (int64_t o = 0; o < outer; ++o) {
    // Decompose the outer index into the multi-index over dims [0, nd-1).
    int64_t rem = o, so = 0, dof = 0;
    for (int d = nd - 2; d >= 0; --d) {
      int64_t i = rem % ls.shape[d];
      rem /= ls.shape[d];
      so += i * ls.strides[d];
      dof += i * ld.strides[d];
    }
    if constexpr (std::is_same_v<S, D> && std::is_arithmetic_v<S>) {
      for (int64_t i = 0; i < inner; ++i) dst[dof + i * d_in] = src[so + i * s_in];
    } else {
      for (int64_t i = 0; i < inner; ++i) store_from_double(dst, dof + i * d_in, load_as_double(src, so + i * s_in));
    }
  }
}
}  // namespace

void copy(DType src_dt, const void* src, Layout ls, DType dst_dt, void* dst, Layout ld) {
  if (src_dt == dst_dt && layout_is_contiguous(ls) && layout_is_contiguous(ld)) {
    std::memcpy(dst, src, size_t(layout_numel(ls) * dtype_size(src_dt)));
    return;
  }
  SANF_DISPATCH_ALL(src_dt, "copy", [&] {
    using S = scalar_t;
    SANF_DISPATCH_ALL(dst_dt, "copy", [&] {
      copy_typed(static_cast<const S*>(src), ls, static_cast<scalar_t*>(dst), ld);
    });
  });
}

namespace {
template <typename T>
void fill_typed(T* p, int64_t n, double value) {
  T v;
  store_from_double(&v, 0, value);
#pragma omp parallel for if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) p[i] = v;
}
}  // namespace

void fill(DType dt, void* dst, int64_t n, double value) {
  SANF_DISPATCH_ALL(dt, "fill", [&] { fill_typed(static_cast<scalar_t*>(dst), n, value); });
}

}  // namespace sanf::kernels::cpu
