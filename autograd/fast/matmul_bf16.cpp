// autograd/fast/matmul_bf16.cpp: linear and matmul with bf16 GEMM operands, f32 accumulation and f32
// results: the bf16 inference path of the ViT backbone (nn::MatmulPrecision::BF16).
//
//   linear_bf16(x, W, b, gelu):  y = act(bf16(x) bf16(W)^T + b)      x: (..., in), W: (out, in), y: (..., out)
//   matmul_bf16(a, b):           y = bf16(a) @ bf16(b)               (..., M, K) @ (..., K, N) -> (..., M, N)
// where bf16(.) rounds each f32 to the nearest bfloat16 (8-bit mantissa, ties to even; what to(x, BF16)
// does) and act is the identity or the exact GELU. Products of two bf16 values are exact in f32 and are
// summed in f32; the bias, the GELU and the result stay f32 (out = BF16: the f32 result rounded). An
// operand that is already bf16 (a weight converted once, when the model was switched to bf16) is used as it
// is: converting the weights on every call would cost a pass over all of them per forward. linear_bf16's
// residual is added to the f32 result last (kernels::gemm_bf16's `add`: on CUDA, with cuBLASLt switched
// on, inside the GEMM).
//
// Inference only: there is no backward (the rounding has no useful derivative, and training in bf16 would
// need f32 master weights and loss scaling). While autograd would record (grad mode on and an input that
// requires grad) both ops throw, naming themselves; under NoGradGuard they return plain tensors.
//
// The operands are converted into contiguous bf16 tensors (one strided copy each, by to(x, BF16)) and
// handed to kernels::gemm_bf16: cuBLAS with bf16 inputs on CUDA, the widened f32
// GEMM on the CPU (kernels/fast/matmul_bf16.h). A right operand that is a transposed view (attention's k^T) is
// converted in its own memory order and read transposed, so its copy reads memory in order.
#include "kernels/fast/matmul_bf16.h"
#include "autograd/fast.h"
#include "autograd/ops/common.h"

namespace sanf {

using namespace ops_detail;

namespace {

void check_operand(const char* op, const Tensor& t, const char* what) {
  SANF_CHECK(t.defined(), "[", op, "] undefined tensor argument (", what, ")");
  SANF_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::BF16, "[", op, "] ", what,
             " must be f32 (rounded to bf16 here) or bf16, got ", t.info());
}

// x as a contiguous bf16 tensor: x itself if it already is one, else one rounded copy (nothing is recorded:
// check_inference has made sure no input requires grad while grad mode is on).
Tensor as_bf16(const Tensor& x) { return contiguous(to(x, DType::BF16)); }

}  // namespace

Tensor linear_bf16(const Tensor& x, const Tensor& weight, const Tensor& bias, bool gelu, DType out,
                   const Tensor& residual) {
  const char* op = "linear_bf16";
  check_bf16_op_result(op, out);
  check_operand(op, x, "x");
  check_operand(op, weight, "weight");
  SANF_CHECK(x.device() == weight.device(), "[", op, "] devices differ: ", x.info(), " and ", weight.info());
  SANF_CHECK(weight.dim() == 2, "[", op, "] weight must be (out, in), got ", shape_str(weight.shape()));
  SANF_CHECK(x.dim() >= 1, "[", op, "] x must have at least 1 dim, got ", shape_str(x.shape()));
  const int64_t out_f = weight.size(0), in_f = weight.size(1);
  SANF_CHECK(x.size(-1) == in_f, "[", op, "] x ", shape_str(x.shape()), " and weight ", shape_str(weight.shape()),
             " differ in the input width");
  if (bias.defined()) {
    SANF_CHECK(bias.dtype() == DType::F32 && bias.device() == x.device(), "[", op, "] bias must be f32 on ",
               device_name(x.device()), ", got ", bias.info());
    SANF_CHECK(bias.dim() == 1 && bias.size(0) == out_f, "[", op, "] bias ", shape_str(bias.shape()),
               " does not match weight ", shape_str(weight.shape()), ": needs ", shape_str({out_f}));
  }
  Shape y_shape(x.shape().begin(), x.shape().end() - 1);
  y_shape.push_back(out_f);
  if (residual.defined()) {
    SANF_CHECK(residual.dtype() == DType::F32 && residual.device() == x.device() && residual.shape() == y_shape, "[",
               op, "] residual must be f32 ", shape_str(y_shape), " on ", device_name(x.device()), ", got ",
               residual.info());
  }
  check_inference(op, {x, weight, bias, residual});

  const Tensor X = as_bf16(x), W = as_bf16(weight);  // X: (..., in) contiguous, W: (out, in)
  const Tensor b = bias.defined() ? dense(bias) : Tensor();
  const Tensor r = residual.defined() ? contiguous(residual) : Tensor();
  Tensor y = Tensor::empty(y_shape, DType::F32, x.device());
  Tensor y16 = out == DType::BF16 ? Tensor::empty(y_shape, DType::BF16, x.device()) : Tensor();
  if (y.numel() == 0) return y16.defined() ? y16 : y;
  // y (rows, out) = X (rows, in) @ W^T: W read transposed in place.
  kernels::GemmArgs g;
  g.M = numel(Shape(x.shape().begin(), x.shape().end() - 1)), g.N = out_f, g.K = in_f;
  g.A = X.data_ptr(), g.lda = std::max<int64_t>(in_f, 1);
  g.B = W.data_ptr(), g.ldb = std::max<int64_t>(in_f, 1), g.trans_b = true;
  g.C = y.data_ptr(), g.ldc = out_f;
  g.bias = b.defined() ? b.data_ptr() : nullptr;
  g.gelu = gelu;
  kernels::gemm_bf16(y.device(), g, y16.defined() ? y16.data<bf16>() : nullptr,
                     r.defined() ? r.data<float>() : nullptr);
  return y16.defined() ? y16 : y;
}

Tensor matmul_bf16(const Tensor& a, const Tensor& b, DType out) {
  const char* op = "matmul_bf16";
  check_bf16_op_result(op, out);
  check_operand(op, a, "a");
  check_operand(op, b, "b");
  SANF_CHECK(a.device() == b.device(), "[", op, "] devices differ: ", a.info(), " and ", b.info());
  SANF_CHECK(a.dim() >= 2 && b.dim() >= 2, "[", op, "] needs operands of at least 2 dims, got ", shape_str(a.shape()),
             " x ", shape_str(b.shape()));
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  SANF_CHECK(b.size(-2) == K, "[", op, "] inner dims differ: ", shape_str(a.shape()), " x ", shape_str(b.shape()));
  check_inference(op, {a, b});

  // Batch dims broadcast as in matmul.
  const Shape batch = matmul_batch_shape(a.shape(), b.shape(), op, a.shape(), b.shape());
  const int64_t nbatch = numel(batch);
  Tensor y = Tensor::empty(cat_shape(batch, {M, N}), DType::F32, a.device());
  Tensor y16 = out == DType::BF16 ? Tensor::empty(y.shape(), DType::BF16, a.device()) : Tensor();
  if (y.numel() == 0) return y16.defined() ? y16 : y;

  // An operand with a single matrix is converted once and broadcast (batch stride 0); otherwise it is
  // expanded to the full batch and converted, one matrix after another.
  auto stack = [&](const Tensor& v, int64_t R, int64_t C) {
    return numel(Shape(v.shape().begin(), v.shape().end() - 2)) == 1
               ? v.as_strided({R, C}, {v.strides()[size_t(v.dim() - 2)], v.strides()[size_t(v.dim() - 1)]}, v.offset())
               : broadcast_view(v, cat_shape(batch, {R, C}));
  };
  const Tensor av = stack(a, M, K), bv = stack(b, K, N);
  const bool a_shared = av.dim() == 2, b_shared = bv.dim() == 2;
  // b read transposed when it is a transposed view (column stride 1): its copy then follows its memory.
  const bool b_trans = bv.strides()[size_t(bv.dim() - 2)] == 1 && bv.strides()[size_t(bv.dim() - 1)] != 1 && N > 1;
  const Tensor A = as_bf16(av);
  const Tensor B = as_bf16(b_trans ? transpose(bv, -2, -1) : bv);  // (.., K, N), or (.., N, K) read transposed

  kernels::GemmArgs g;
  g.M = M, g.N = N, g.K = K;
  g.A = A.data_ptr(), g.lda = std::max<int64_t>(K, 1), g.stride_a = a_shared ? 0 : M * K;
  g.B = B.data_ptr(), g.trans_b = b_trans, g.stride_b = b_shared ? 0 : K * N;
  g.ldb = std::max<int64_t>(b_trans ? K : N, 1);
  g.C = y.data_ptr(), g.ldc = N, g.stride_c = M * N;
  g.batch = nbatch;
  // One B for the whole batch: a single GEMM with the batch folded into the rows.
  if (nbatch > 1 && b_shared && !a_shared) g.M = nbatch * M, g.batch = 1;
  kernels::gemm_bf16(y.device(), g, y16.defined() ? y16.data<bf16>() : nullptr);
  return y16.defined() ? y16 : y;
}

}  // namespace sanf
