// kernels/index.h: gather (index_select) along the middle axis of a contiguous (M, S, I) block, and its
// adjoint, scatter-add (index_add).
//
//   index_select:  out[m, j, i] = x[m, idx[j], i]            out: (M, n_idx, I)
//   index_add:     dst[m, idx[j], i] += src[m, j, i]         dst: (M, S, I), accumulated (repeated indices add)
// Indices are int64 on the same device as the data, already checked to lie in [0, S) by the op.
#pragma once

#include "kernels/dispatch.h"

namespace sanf::kernels {

namespace cpu {
void index_select(DType dt, const void* x, const int64_t* idx, void* out, int64_t M, int64_t S, int64_t I,
                  int64_t n_idx);
void index_add(DType dt, const void* src, const int64_t* idx, void* dst, int64_t M, int64_t S, int64_t I,
               int64_t n_idx);
}  // namespace cpu
namespace cuda {
void index_select(DType dt, const void* x, const int64_t* idx, void* out, int64_t M, int64_t S, int64_t I,
                  int64_t n_idx);
void index_add(DType dt, const void* src, const int64_t* idx, void* dst, int64_t M, int64_t S, int64_t I,
               int64_t n_idx);
}  // namespace cuda

inline void index_select(const Tensor& x, const Tensor& idx, const Tensor& out, int64_t M, int64_t S, int64_t I) {
  SANF_DEVICE_SWITCH(
      x.device(), "index_select",
      cpu::index_select(x.dtype(), x.data_ptr(), idx.data<int64_t>(), out.data_ptr(), M, S, I, idx.numel()),
      cuda::index_select(x.dtype(), x.data_ptr(), idx.data<int64_t>(), out.data_ptr(), M, S, I, idx.numel()));
}
inline void index_add(const Tensor& src, const Tensor& idx, const Tensor& dst, int64_t M, int64_t S, int64_t I) {
  SANF_DEVICE_SWITCH(
      dst.device(), "index_add",
      cpu::index_add(dst.dtype(), src.data_ptr(), idx.data<int64_t>(), dst.data_ptr(), M, S, I, idx.numel()),
      cuda::index_add(dst.dtype(), src.data_ptr(), idx.data<int64_t>(), dst.data_ptr(), M, S, I, idx.numel()));
}

}  // namespace sanf::kernels
