// kernels/softmax.h: softmax and log-softmax over the last axis of a contiguous (rows, cols) block.
//
// Forward, numerically stable:   m = max_j x_j;  softmax_j = exp(x_j - m) / sum_k exp(x_k - m)
//                                log_softmax_j = x_j - m - log(sum_k exp(x_k - m))
// Backward, given the forward output y:
//   softmax:      dx_j = y_j * (dy_j - sum_k dy_k y_k)
//   log_softmax:  dx_j = dy_j - exp(y_j) * sum_k dy_k
//
// softmax_to_bf16 is the f32 softmax with its output rounded to bf16 as it is stored (inference: the bf16
// attention of nn/attention.h, whose A v product takes bf16 operands): bit for bit to(softmax(x), BF16) on
// the same device, in one pass that writes 2 bytes per element instead of writing 4, reading them back
// and writing 2.
#pragma once

#include "kernels/dispatch.h"

namespace sanf::kernels {

namespace cpu {
void softmax(DType dt, const void* x, void* y, int64_t rows, int64_t cols, bool log);
void softmax_backward(DType dt, const void* y, const void* dy, void* dx, int64_t rows, int64_t cols, bool log);
void softmax_to_bf16(const float* x, bf16* y, int64_t rows, int64_t cols);
}  // namespace cpu
namespace cuda {
void softmax(DType dt, const void* x, void* y, int64_t rows, int64_t cols, bool log);
void softmax_backward(DType dt, const void* y, const void* dy, void* dx, int64_t rows, int64_t cols, bool log);
void softmax_to_bf16(const float* x, bf16* y, int64_t rows, int64_t cols);
}  // namespace cuda

// All contiguous, same dtype and device, viewed as (rows, cols).
inline void softmax(const Tensor& x, const Tensor& y, int64_t rows, int64_t cols, bool log) {
  SANF_DEVICE_SWITCH(x.device(), "softmax", cpu::softmax(x.dtype(), x.data_ptr(), y.data_ptr(), rows, cols, log),
                     cuda::softmax(x.dtype(), x.data_ptr(), y.data_ptr(), rows, cols, log));
}
// x: contiguous f32, y: contiguous bf16, same device.
inline void softmax_to_bf16(const Tensor& x, const Tensor& y, int64_t rows, int64_t cols) {
  SANF_DEVICE_SWITCH(x.device(), "softmax_bf16",
                     cpu::softmax_to_bf16(x.data<float>(), y.data<bf16>(), rows, cols),
                     cuda::softmax_to_bf16(x.data<float>(), y.data<bf16>(), rows, cols));
}
inline void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx, int64_t rows, int64_t cols,
                             bool log) {
  SANF_DEVICE_SWITCH(
      y.device(), "softmax backward",
      cpu::softmax_backward(y.dtype(), y.data_ptr(), dy.data_ptr(), dx.data_ptr(), rows, cols, log),
      cuda::softmax_backward(y.dtype(), y.data_ptr(), dy.data_ptr(), dx.data_ptr(), rows, cols, log));
}

}  // namespace sanf::kernels
