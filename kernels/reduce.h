// kernels/reduce.h: sum and max over the middle axis of a contiguous (M, R, I) block.
//
// Any reduction over a run of adjacent dims is this shape without a copy: M = product of the dims before,
// R = product of the reduced dims, I = product of the dims after. (Non-adjacent dims are permuted together
// first by the op.) Max also returns, per output, the position in [0, R) of the first maximum, which its
// backward routes the gradient to.
#pragma once

#include "kernels/dispatch.h"

namespace sanf::kernels {

enum class ReduceOp { Sum, Max };

namespace cpu {
// x: (M, R, I) contiguous; out: (M, I); argmax: (M, I) int64 or nullptr (Max only).
void reduce(ReduceOp op, DType dt, const void* x, void* out, int64_t* argmax, int64_t M, int64_t R, int64_t I);
// dx: (M, R, I), fully written: dx[m, argmax[m, i], i] = dout[m, i], zero elsewhere.
void reduce_max_backward(DType dt, const void* dout, const int64_t* argmax, void* dx, int64_t M, int64_t R,
                         int64_t I);
}  // namespace cpu
namespace cuda {
void reduce(ReduceOp op, DType dt, const void* x, void* out, int64_t* argmax, int64_t M, int64_t R, int64_t I);
void reduce_max_backward(DType dt, const void* dout, const int64_t* argmax, void* dx, int64_t M, int64_t R,
                         int64_t I);
}  // namespace cuda

// x: contiguous, viewed as (M, R, I); out: contiguous (M*I elements); argmax: i64 (M*I) or undefined.
inline void reduce(ReduceOp op, const Tensor& x, const Tensor& out, const Tensor& argmax, int64_t M, int64_t R,
                   int64_t I) {
  int64_t* am = argmax.defined() ? argmax.data<int64_t>() : nullptr;
  SANF_DEVICE_SWITCH(x.device(), "reduce", cpu::reduce(op, x.dtype(), x.data_ptr(), out.data_ptr(), am, M, R, I),
                     cuda::reduce(op, x.dtype(), x.data_ptr(), out.data_ptr(), am, M, R, I));
}
inline void reduce_max_backward(const Tensor& dout, const Tensor& argmax, const Tensor& dx, int64_t M, int64_t R,
                                int64_t I) {
  SANF_DEVICE_SWITCH(
      dx.device(), "max backward",
      cpu::reduce_max_backward(dx.dtype(), dout.data_ptr(), argmax.data<int64_t>(), dx.data_ptr(), M, R, I),
      cuda::reduce_max_backward(dx.dtype(), dout.data_ptr(), argmax.data<int64_t>(), dx.data_ptr(), M, R, I));
}

}  // namespace sanf::kernels
