// autograd/ops/common.h: checks and helpers shared by the op files (internal to autograd/).
#pragma once

#include "autograd/ops.h"
#include "kernels/copy.h"

namespace sanf::ops_detail {

// Throws "[op] needs f32 or f64, got bf16 ..." unless x is a compute dtype.
inline void check_float(const char* op, const Tensor& x) {
  SANF_CHECK(x.defined(), "[", op, "] undefined tensor argument");
  SANF_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::F64, "[", op, "] needs f32 or f64, got ", x.info(),
             " (convert with to())");
}

// Throws unless a and b share dtype and device, naming both.
inline void check_same(const char* op, const Tensor& a, const Tensor& b) {
  SANF_CHECK(a.defined() && b.defined(), "[", op, "] undefined tensor argument");
  SANF_CHECK(a.dtype() == b.dtype(), "[", op, "] dtypes differ: ", a.info(), " and ", b.info());
  SANF_CHECK(a.device() == b.device(), "[", op, "] devices differ: ", a.info(), " and ", b.info());
}

// The inference-only ops (bf16 GEMMs and softmax: no backward) refuse to run where autograd would record
// (grad mode on and an input that requires grad), naming themselves.
inline void check_inference(const char* op, const std::vector<Tensor>& inputs) {
  if (!grad_enabled()) return;
  for (const Tensor& t : inputs)
    SANF_CHECK(!t.defined() || !t.requires_grad(), "[", op,
               "] is inference-only (bf16 results have no backward), but an input requires grad: run it "
               "under NoGradGuard, or use f32 precision to train");
}

// layer_norm's arguments (x: (..., D) of a float dtype, weight and bias: (D) of x's dtype and device, eps >= 0),
// checked for `op` (layer_norm, layer_norm_bf16); returns D. In autograd/ops/layernorm.cpp.
int64_t check_layer_norm_args(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, double eps);

// The bf16 inference ops' result dtype: f32, or bf16 (for a result that only feeds another bf16 GEMM).
inline void check_bf16_op_result(const char* op, DType out) {
  SANF_CHECK(out == DType::F32 || out == DType::BF16, "[", op, "] the result is f32 or bf16, not ", dtype_name(out));
}

// x itself if contiguous, else a contiguous copy. Records nothing: for use inside an op's forward or
// backward, where the op records its own node.
inline Tensor dense(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels::copy(out, x);
  return out;
}

// A view of x broadcast to `shape` (stride 0 on new or size-1 dims). No checks beyond the dims.
inline Tensor broadcast_view(const Tensor& x, const Shape& shape) {
  const size_t n = shape.size(), k = x.shape().size();
  Shape st(n, 0);
  for (size_t i = 0; i < k; ++i) {
    size_t o = n - k + i;
    st[o] = x.shape()[i] == shape[o] ? x.strides()[i] : 0;
  }
  return x.as_strided(shape, st, x.offset());
}

// s with the dims `tail` appended: cat_shape(batch, {M, N}).
inline Shape cat_shape(Shape s, std::initializer_list<int64_t> tail) {
  s.insert(s.end(), tail);
  return s;
}

// The broadcast batch dims of a @ b for shapes (..., M, K) and (..., K, N) (at least 2-D each); throws
// "[op] batch dims do not broadcast: A x B" naming the caller's original shapes.
Shape matmul_batch_shape(const Shape& a, const Shape& b, const char* op, const Shape& a_orig, const Shape& b_orig);

// x viewed with dims d and last swapped: no copy, no graph (swapping twice is the identity).
inline Tensor swap_with_last(const Tensor& x, int d) {
  const size_t a = size_t(d), b = size_t(x.dim() - 1);
  if (a == b) return x;
  Shape shape = x.shape(), strides = x.strides();
  std::swap(shape[a], shape[b]);
  std::swap(strides[a], strides[b]);
  return x.as_strided(shape, strides, x.offset());
}

}  // namespace sanf::ops_detail
