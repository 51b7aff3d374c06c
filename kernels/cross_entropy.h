// kernels/cross_entropy.h: softmax cross-entropy of (rows, cols) logits against one integer label per row.
//
// Forward, per row r with label y = labels[r], numerically stable (the row maximum m subtracted first):
//   lse[r]  = m + log sum_j exp(x[r, j] - m)          the log-sum-exp of the row
//   loss[r] = lse[r] - x[r, y]                         = -log softmax(x[r])_y
// Backward of the MEAN loss L = (1/rows) sum_r loss[r], given dL (the scalar gradient arriving at L):
//   dx[r, j] = dL / rows * (exp(x[r, j] - lse[r]) - [j == y])    softmax minus the one-hot label
// The forward keeps lse per row so the backward needs one exp per element and no second reduction.
//
// logits, dx: contiguous (rows, cols) of one float dtype; labels: contiguous i64 (rows), every entry already
// checked to lie in [0, cols) (autograd/ops/cross_entropy.cpp does that on the host); loss, lse: contiguous
// (rows) of the logits' dtype; dL: one element of the logits' dtype, on the same device (read by the kernel,
// so the backward never waits for the device to hand a number to the host).
#pragma once

#include "kernels/dispatch.h"

namespace sanf::kernels {

namespace cpu {
void cross_entropy(DType dt, const void* x, const int64_t* labels, void* loss, void* lse, int64_t rows, int64_t cols);
void cross_entropy_backward(DType dt, const void* x, const int64_t* labels, const void* lse, const void* dL, void* dx,
                            int64_t rows, int64_t cols);
}  // namespace cpu
namespace cuda {
void cross_entropy(DType dt, const void* x, const int64_t* labels, void* loss, void* lse, int64_t rows, int64_t cols);
void cross_entropy_backward(DType dt, const void* x, const int64_t* labels, const void* lse, const void* dL, void* dx,
                            int64_t rows, int64_t cols);
}  // namespace cuda

inline void cross_entropy(const Tensor& x, const Tensor& labels, const Tensor& loss, const Tensor& lse, int64_t rows,
                          int64_t cols) {
  SANF_DEVICE_SWITCH(
      x.device(), "cross_entropy",
      cpu::cross_entropy(x.dtype(), x.data_ptr(), labels.data<int64_t>(), loss.data_ptr(), lse.data_ptr(), rows, cols),
      cuda::cross_entropy(x.dtype(), x.data_ptr(), labels.data<int64_t>(), loss.data_ptr(), lse.data_ptr(), rows,
                          cols));
}
inline void cross_entropy_backward(const Tensor& x, const Tensor& labels, const Tensor& lse, const Tensor& dL,
                                   const Tensor& dx, int64_t rows, int64_t cols) {
  SANF_DEVICE_SWITCH(x.device(), "cross_entropy backward",
                     cpu::cross_entropy_backward(x.dtype(), x.data_ptr(), labels.data<int64_t>(), lse.data_ptr(),
                                                 dL.data_ptr(), dx.data_ptr(), rows, cols),
                     cuda::cross_entropy_backward(x.dtype(), x.data_ptr(), labels.data<int64_t>(), lse.data_ptr(),
                                                  dL.data_ptr(), dx.data_ptr(), rows, cols));
}

}  // namespace sanf::kernels
