// kernels/cpu/copy.cpp: strided copy with dtype conversion, and fill.
//
// The two layouts are first coalesced (kernels/cpu/loops.h: size-1 dims dropped, dims that both walk as one
// merged), so a copy is one flat run or rows of the longest run both sides share. Same-dtype contiguous
// copies are one memcpy (split across threads when large); same-dtype rows with unit stride on both sides
// are a memcpy per row; any other stride pair is a strided loop per row. Rows are walked by for_rows (an
// odometer) and shared out with parallel_for; dtype conversions go through double, one element at a time.
#include <cstring>
#include <type_traits>

#include "kernels/copy.h"
#include "kernels/cpu/loops.h"

namespace sanf::kernels::cpu {

namespace {
// Bytes per thread below which a copy stays on one thread.
constexpr int64_t kCopyGrainBytes = int64_t(1) << 17;

template <typename S, typename D>
void copy_typed(const S* src, Layout ls, D* dst, Layout ld) {
  coalesce(ls, ld);
  const int nd = ls.ndim;
  if (nd == 0) {  // a single element
    store_from_double(dst, 0, load_as_double(src, 0));
    return;
  }
  const int64_t inner = ls.shape[nd - 1], s_in = ls.strides[nd - 1], d_in = ld.strides[nd - 1];
  const int64_t rows = layout_numel(ls) / inner;
  const int64_t grain_rows = std::max<int64_t>(1, kCopyGrainBytes / int64_t(sizeof(D)) / inner);
  parallel_for(
      rows, grain_rows,
      [&](int64_t r0, int64_t r1) {
        for_rows(ls, ld, r0, r1, [&](int64_t, int64_t so, int64_t dof) {
          const S* s = src + so;
          D* d = dst + dof;
          if constexpr (std::is_same_v<S, D>) {
            if (s_in == 1 && d_in == 1) {
              std::memcpy(d, s, size_t(inner) * sizeof(D));
            } else {
              for (int64_t i = 0; i < inner; ++i) d[i * d_in] = s[i * s_in];
            }
          } else {
            for (int64_t i = 0; i < inner; ++i) store_from_double(d, i * d_in, load_as_double(s, i * s_in));
          }
        });
      },
      1);
}
}  // namespace

void copy(DType src_dt, const void* src, Layout ls, DType dst_dt, void* dst, Layout ld) {
  if (layout_numel(ls) == 0) return;
  if (src_dt == dst_dt && layout_is_contiguous(ls) && layout_is_contiguous(ld)) {
    const int64_t bytes = layout_numel(ls) * int64_t(dtype_size(src_dt));
    parallel_for(
        bytes, kCopyGrainBytes,
        [&](int64_t b0, int64_t b1) {
          std::memcpy(static_cast<char*>(dst) + b0, static_cast<const char*>(src) + b0, size_t(b1 - b0));
        },
        64);
    return;
  }
  SANF_DISPATCH_ALL(src_dt, "copy", [&] {
    using S = scalar_t;
    SANF_DISPATCH_ALL(dst_dt, "copy",
                      [&] { copy_typed(static_cast<const S*>(src), ls, static_cast<scalar_t*>(dst), ld); });
  });
}

namespace {
template <typename T>
void fill_typed(T* p, int64_t n, double value) {
  T v;
  store_from_double(&v, 0, value);
  parallel_for(n, kCopyGrainBytes / int64_t(sizeof(T)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) p[i] = v;
  });
}
}  // namespace

void fill(DType dt, void* dst, int64_t n, double value) {
  SANF_DISPATCH_ALL(dt, "fill", [&] { fill_typed(static_cast<scalar_t*>(dst), n, value); });
}

}  // namespace sanf::kernels::cpu
