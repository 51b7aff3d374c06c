// kernels/softmax.h: softmax and log-softmax over the last axis of a contiguous (rows, cols) block.
//
// Forward, numerically stable:   m = max_j x_j;  softmax_j = exp(x_j - m) / sum_k exp(x_k - m)
//                                log_softmax_j = x_j - m - log(sum_k exp(x_k - m))
// Backward, given the forward output y:
//   softmax:      dx_j = y_j * (dy_j - sum_k dy_k y_k)
//   log_softmax:  dx_j = dy_j - exp(y_j) * sum_k dy_k
#pragma once

#include "kernels/dispatch.h"

namespace sanf::kernels {

namespace cpu {
void softmax(DType dt, const void* x, void* y, int64_t rows, int64_t cols, bool log);
void softmax_backward(DType dt, const void* y, const void* dy, void* dx, int64_t rows, int64_t cols, bool log);
}  // namespace cpu
namespace cuda {
void softmax(DType dt, const void* x, void* y, int64_t rows, int64_t cols, bool log);
void softmax_backward(DType dt, const void* y, const void* dy, void* dx, int64_t rows, int64_t cols, bool log);
}  // namespace cuda

// All contiguous, same dtype and device, viewed as (rows, cols).
inline void softmax(const Tensor& x, const Tensor& y, int64_t rows, int64_t cols, bool log) {
  SANF_DEVICE_SWITCH(x.device(), "softmax", cpu::softmax(x.dtype(), x.data_ptr(), y.data_ptr(), rows, cols, log),
                     cuda::softmax(x.dtype(), x.data_ptr(), y.data_ptr(), rows, cols, log));
}
inline void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx, int64_t rows, int64_t cols,
                             bool log) {
  SANF_DEVICE_SWITCH(
      y.device(), "softmax backward",
      cpu::softmax_backward(y.dtype(), y.data_ptr(), dy.data_ptr(), dx.data_ptr(), rows, cols, log),
      cuda::softmax_backward(y.dtype(), y.data_ptr(), dy.data_ptr(), dx.data_ptr(), rows, cols, log));
}

}  // namespace sanf::kernels
