// kernels/pool.h: adaptive 2-D average pooling of a token grid.
//
// x: (B, Gh*Gw, D), tokens in row-major grid order; y: (B, gh*gw, D). Output cell (oy, ox) averages the
// input rows [floor(oy*Gh/gh), ceil((oy+1)*Gh/gh)) and columns [floor(ox*Gw/gw), ceil((ox+1)*Gw/gw)),
// exactly as PyTorch's adaptive_avg_pool2d. The backward spreads each output gradient evenly over its cell
// (cells may overlap when the sizes do not divide, so dx accumulates).
#pragma once

#include "kernels/dispatch.h"

namespace sanf::kernels {

namespace cpu {
void avg_pool_tokens(DType dt, const void* x, void* y, int64_t B, int64_t Gh, int64_t Gw, int64_t gh, int64_t gw,
                     int64_t D);
// dx fully written.
void avg_pool_tokens_backward(DType dt, const void* dy, void* dx, int64_t B, int64_t Gh, int64_t Gw, int64_t gh,
                              int64_t gw, int64_t D);
}  // namespace cpu
namespace cuda {
void avg_pool_tokens(DType dt, const void* x, void* y, int64_t B, int64_t Gh, int64_t Gw, int64_t gh, int64_t gw,
                     int64_t D);
void avg_pool_tokens_backward(DType dt, const void* dy, void* dx, int64_t B, int64_t Gh, int64_t Gw, int64_t gh,
                              int64_t gw, int64_t D);
}  // namespace cuda

inline void avg_pool_tokens(const Tensor& x, const Tensor& y, int64_t B, int64_t Gh, int64_t Gw, int64_t gh,
                            int64_t gw, int64_t D) {
  SANF_DEVICE_SWITCH(x.device(), "avg_pool_tokens",
                     cpu::avg_pool_tokens(x.dtype(), x.data_ptr(), y.data_ptr(), B, Gh, Gw, gh, gw, D),
                     cuda::avg_pool_tokens(x.dtype(), x.data_ptr(), y.data_ptr(), B, Gh, Gw, gh, gw, D));
}
inline void avg_pool_tokens_backward(const Tensor& dy, const Tensor& dx, int64_t B, int64_t Gh, int64_t Gw,
                                     int64_t gh, int64_t gw, int64_t D) {
  SANF_DEVICE_SWITCH(dx.device(), "avg_pool_tokens backward",
                     cpu::avg_pool_tokens_backward(dx.dtype(), dy.data_ptr(), dx.data_ptr(), B, Gh, Gw, gh, gw, D),
                     cuda::avg_pool_tokens_backward(dx.dtype(), dy.data_ptr(), dx.data_ptr(), B, Gh, Gw, gh, gw, D));
}

}  // namespace sanf::kernels
