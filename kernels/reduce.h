// kernels/reduce.h: sum and max over the middle axis of a contiguous (M, R, I) block.
//
// Any reduction over a run of adjacent dims is this shape without a copy: M = product of the dims before,
// R = product of the reduced dims, I = product of the dims after. (Non-adjacent dims are permuted together
// first by the op.) Max also returns, per output, the position in [0, R) of the first maximum, which its
// backward routes the gradient to.
//
// sum_squares: the sum of x^2 over every element of a list of tensors (a gradient norm), in one kernel call.
#pragma once

#include <vector>

#include "kernels/dispatch.h"

namespace sanf::kernels {

enum class ReduceOp { Sum, Max };

// One tensor of a sum_squares: n contiguous values at x.
struct SquaresPart {
  const void* x;
  int64_t n;
};
// Every part is cut into chunks of kSquaresChunk elements (the last of a part shorter); each chunk's sum of
// squares is formed in double (each value widened, then squared), and the chunk sums are added in a fixed
// order. The chunks do not depend on the thread count, so neither does the result on a device; the two
// devices sum in different orders, so they agree to double rounding. inf or NaN anywhere
// makes the result inf or NaN.
constexpr int64_t kSquaresChunk = int64_t(1) << 16;
inline int64_t squares_chunks(int64_t n) { return (n + kSquaresChunk - 1) / kSquaresChunk; }  // of n elements

namespace cpu {
// x: (M, R, I) contiguous; out: (M, I); argmax: (M, I) int64 or nullptr (Max only).
void reduce(ReduceOp op, DType dt, const void* x, void* out, int64_t* argmax, int64_t M, int64_t R, int64_t I);
// dx: (M, R, I), fully written: dx[m, argmax[m, i], i] = dout[m, i], zero elsewhere.
void reduce_max_backward(DType dt, const void* dout, const int64_t* argmax, void* dx, int64_t M, int64_t R,
                         int64_t I);
double sum_squares(DType dt, const SquaresPart* parts, int64_t count);
}  // namespace cpu
namespace cuda {
void reduce(ReduceOp op, DType dt, const void* x, void* out, int64_t* argmax, int64_t M, int64_t R, int64_t I);
void reduce_max_backward(DType dt, const void* dout, const int64_t* argmax, void* dx, int64_t M, int64_t R,
                         int64_t I);
double sum_squares(DType dt, const SquaresPart* parts, int64_t count);  // waits for the device (reads the result)
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

// The sum of squares of the elements of ts: defined, contiguous, all f32 or all f64, on one device (an empty
// list: 0). One kernel call however many tensors: a gradient norm over a model's parameters is one on a GPU
// (plus a combining pass), not a handful per parameter.
inline double sum_squares(const std::vector<Tensor>& ts) {
  if (ts.empty()) return 0.0;
  std::vector<SquaresPart> parts;
  for (const Tensor& t : ts) {
    SANF_CHECK(t.defined() && t.is_contiguous() && (t.dtype() == DType::F32 || t.dtype() == DType::F64) &&
                   t.dtype() == ts[0].dtype() && t.device() == ts[0].device(),
               "[sum_squares] needs contiguous tensors of one float dtype on one device, got ",
               t.defined() ? t.info() : "an undefined tensor", " after ", ts[0].info());
    if (t.numel() > 0) parts.push_back({t.data_ptr(), t.numel()});
  }
  double r = 0;
  SANF_DEVICE_SWITCH(ts[0].device(), "sum_squares",
                     r = cpu::sum_squares(ts[0].dtype(), parts.data(), int64_t(parts.size())),
                     r = cuda::sum_squares(ts[0].dtype(), parts.data(), int64_t(parts.size())));
  return r;
}

}  // namespace sanf::kernels
