// autograd/ops/matmul.cpp: matmul (batched, broadcast, NumPy's 1-D rules) and linear, forward and backward.
//
// For C = A @ B with A (M, K), B (K, N) and L a scalar loss, dL/dC = dC gives
//   dA = dC @ B^T   (M, N) @ (N, K)        dB = A^T @ dC   (K, M) @ (M, N)
// Batched, the same holds per batch element; an operand broadcast along batch dims receives the sum of its
// per-element gradients (sum_to). linear is y = x W^T + b with x flattened to rows (R, in):
//   dx = dy @ W   (R, out) @ (out, in)     dW = dy^T @ x   (out, R) @ (R, in)     db = sum over rows of dy
// so dW is one GEMM whose inner dimension runs over every row of the batch. The bias is not copied into y
// first: the GEMM adds it as it writes y. linear_gelu(x, W, b) = gelu(linear(x, W, b)), the ViT MLP's first
// half, has the GEMM apply the GELU too; its backward is dh = dy * gelu'(h), then linear's with dh.
//
// matmul_reference is these formulas for 2-D operands, each product a plain GEMM of contiguous matrices;
// read it first. matmul and linear compute the same for any batch and layout, reading transposed and
// broadcast operands in place (autograd/ops/matmul_layout.h plans that): a B shared by the whole batch
// (x @ W with x (B, N, D)) is one GEMM with the batch folded into M, and its gradient one GEMM with the
// batch folded into K.
#include "autograd/ops/matmul_layout.h"
#include "kernels/elementwise.h"
#include "kernels/matmul.h"

namespace sanf {

using namespace ops_detail;

// ---- the textbook form ------------------------------------------------------------------------------------
// 2-D only, every operand made contiguous, the backward written as the formulas read. matmul below computes
// the same numbers for any batch and layout without the copies; the tests check that the two agree.
Tensor matmul_reference(const Tensor& a, const Tensor& b) {
  check_float("matmul_reference", a);
  check_same("matmul_reference", a, b);
  SANF_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0),
             "[matmul_reference] needs (M, K) x (K, N), got ", shape_str(a.shape()), " x ", shape_str(b.shape()));
  const Tensor A = dense(a), B = dense(b);  // row-major, rows one row length apart
  const int64_t M = A.size(0), K = A.size(1), N = B.size(1);
  Tensor C = Tensor::empty({M, N}, a.dtype(), a.device());
  kernels::GemmArgs g;  // C = A B: no transposes, no batch, no bias
  g.M = M, g.N = N, g.K = K;
  g.A = A.data_ptr(), g.lda = K;
  g.B = B.data_ptr(), g.ldb = N;
  g.C = C.data_ptr(), g.ldc = N;
  if (C.numel() > 0) kernels::gemm(C.device(), C.dtype(), g);
  return record("matmul_reference", C, {a, b}, [A, B](const Tensor& dC, const std::vector<bool>& needs) {
    Tensor dA, dB;
    if (needs[0]) dA = matmul_reference(dC, transpose(B, 0, 1));  // dA = dC B^T   (M, N) @ (N, K)
    if (needs[1]) dB = matmul_reference(transpose(A, 0, 1), dC);  // dB = A^T dC   (K, M) @ (M, N)
    return std::vector<Tensor>{dA, dB};
  });
}

// ---- matmul and linear, with the operand layouts planned (autograd/ops/matmul_layout.h) ----------------------

Shape ops_detail::matmul_batch_shape(const Shape& a, const Shape& b, const char* op, const Shape& a_orig,
                                     const Shape& b_orig) {
  const Shape a_batch(a.begin(), a.end() - 2), b_batch(b.begin(), b.end() - 2);
  const size_t nb = std::max(a_batch.size(), b_batch.size());
  Shape batch(nb);
  for (size_t i = 0; i < nb; ++i) {
    const int64_t da = i < nb - a_batch.size() ? 1 : a_batch[i - (nb - a_batch.size())];
    const int64_t db = i < nb - b_batch.size() ? 1 : b_batch[i - (nb - b_batch.size())];
    SANF_CHECK(da == db || da == 1 || db == 1, "[", op, "] batch dims do not broadcast: ", shape_str(a_orig), " x ",
               shape_str(b_orig));
    batch[i] = da == 1 ? db : da;
  }
  return batch;
}

namespace {

// (..., M, K) @ (..., K, N) with both operands at least 2-D and the inner dims already checked.
Tensor matmul_nd(const Tensor& a, const Tensor& b, const Shape& a_orig, const Shape& b_orig) {
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  const Shape b_batch(b.shape().begin(), b.shape().end() - 2);
  const Shape batch = matmul_batch_shape(a.shape(), b.shape(), "matmul", a_orig, b_orig);
  const int64_t nbatch = numel(batch);
  Operand A = as_operand(broadcast_view(a, cat_shape(batch, {M, K})));
  Operand B = as_operand(broadcast_view(b, cat_shape(batch, {K, N})));
  Tensor out = Tensor::empty(cat_shape(batch, {M, N}), a.dtype(), a.device());
  gemm(A, B, out, nbatch, M, N, K);
  const bool b_shared = numel(b_batch) == 1;  // one B matrix for the whole batch
  return record(
      "matmul", out, {a, b},
      [A, B, batch, nbatch, M, N, K, b_shared, a_shape = a.shape(), b_shape = b.shape()](
          const Tensor& g, const std::vector<bool>& needs) {
        Operand G = as_operand(g);  // dC: (batch..., M, N)
        Tensor da, db;
        if (needs[0]) {  // dA = dC @ B^T, summed over the dims A was broadcast along
          da = Tensor::empty(cat_shape(batch, {M, K}), g.dtype(), g.device());
          gemm(G, B.t(), da, nbatch, M, K, N);
          da = sum_to(da, a_shape);
        }
        if (needs[1]) {  // dB = A^T @ dC, summed likewise
          if (nbatch > 1 && b_shared && !A.trans && A.stride == M * A.ld && !G.trans && G.stride == M * G.ld) {
            // Sum over the batch of A_b^T dC_b = (all rows of A)^T @ (all rows of dC): one GEMM
            // with the batch folded into its inner dimension, written straight into dB's shape.
            db = Tensor::empty(b_shape, g.dtype(), g.device());
            gemm(A.t(), G, db, 1, K, N, nbatch * M);
          } else {
            db = Tensor::empty(cat_shape(batch, {K, N}), g.dtype(), g.device());
            gemm(A.t(), G, db, nbatch, K, N, M);
            db = sum_to(db, b_shape);
          }
        }
        return std::vector<Tensor>{da, db};
      });
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_float("matmul", a);
  check_same("matmul", a, b);
  SANF_CHECK(a.dim() >= 1 && b.dim() >= 1, "[matmul] needs operands of at least 1 dim, got ", shape_str(a.shape()),
             " x ", shape_str(b.shape()));
  const int64_t ka = a.size(-1), kb = b.dim() == 1 ? b.size(0) : b.size(-2);
  SANF_CHECK(ka == kb, "[matmul] inner dims differ: ", shape_str(a.shape()), " x ", shape_str(b.shape()));
  if (a.dim() >= 2 && b.dim() >= 2) return matmul_nd(a, b, a.shape(), b.shape());
  // NumPy's 1-D rules: a vector on the left is a (1, K) row, on the right a (K, 1) column, and the added
  // dim is dropped from the result. (vector . vector gives a 0-dim tensor.) The reshapes are recorded ops,
  // so the gradient flows back through them.
  Tensor out = matmul_nd(a.dim() == 1 ? unsqueeze(a, 0) : a, b.dim() == 1 ? unsqueeze(b, 1) : b, a.shape(), b.shape());
  if (a.dim() == 1) out = squeeze(out, -2);
  if (b.dim() == 1) out = squeeze(out, -1);
  return out;
}

namespace {

// linear and linear_gelu: y = act(x W^T + b). The bias is added and the GELU applied by the GEMM as it
// writes y (kernels/matmul.h's epilogue): no pass of its own over y. linear_gelu under autograd also keeps
// the pre-activation h = x W^T + b (the GELU's backward needs it): the GEMM writes h, one GELU pass makes y.
Tensor linear_impl(const char* name, const Tensor& x, const Tensor& weight, const Tensor& bias, bool gelu) {
  check_float(name, x);
  check_same(name, x, weight);
  SANF_CHECK(weight.dim() == 2, "[", name, "] weight must be (out, in), got ", shape_str(weight.shape()));
  SANF_CHECK(x.dim() >= 1, "[", name, "] x must have at least 1 dim, got ", shape_str(x.shape()));
  const int64_t out_f = weight.size(0), in_f = weight.size(1);
  SANF_CHECK(x.size(-1) == in_f, "[", name, "] x ", shape_str(x.shape()), " and weight ", shape_str(weight.shape()),
             " differ in the input width");
  const bool has_bias = bias.defined();
  if (has_bias) {
    check_same(name, x, bias);
    SANF_CHECK(bias.dim() == 1 && bias.size(0) == out_f, "[", name, "] bias ", shape_str(bias.shape()),
               " does not match weight ", shape_str(weight.shape()), ": needs ", shape_str({out_f}));
  }
  // x: (..., in) -> rows (R, in); weight (out, in) is read transposed as W^T (in, out).
  Operand X = rows_operand(x), W = as_operand(weight);
  const int64_t rows = count_rows(x);
  Shape y_shape(x.shape().begin(), x.shape().end() - 1);
  y_shape.push_back(out_f);
  const Tensor b = has_bias ? dense(bias) : Tensor();
  const bool grad =
      grad_enabled() && (x.requires_grad() || weight.requires_grad() || (has_bias && bias.requires_grad()));
  Tensor y = Tensor::empty(y_shape, x.dtype(), x.device()), h;
  if (gelu && grad) {  // keep h for the backward
    h = Tensor::empty(y_shape, x.dtype(), x.device());
    gemm(X, W.t(), h, 1, rows, out_f, in_f, 0.0, b);
    kernels::unary(kernels::UnaryOp::Gelu, h, y);
  } else {
    gemm(X, W.t(), y, 1, rows, out_f, in_f, 0.0, b, gelu);
  }
  std::vector<Tensor> inputs = {x, weight};
  if (has_bias) inputs.push_back(bias);
  return record(name, y, inputs,
                [X, W, h, yd = h.defined() ? detach(y) : Tensor(), rows, in_f, out_f, has_bias, x_shape = x.shape()](
                    const Tensor& g, const std::vector<bool>& needs) {
                  Tensor dy = g;
                  if (h.defined()) {  // through the GELU first: dh = dy * gelu'(h)
                    dy = Tensor::empty(h.shape(), h.dtype(), h.device());
                    kernels::unary_backward(kernels::UnaryOp::Gelu, h, yd, dense(g), dy);
                  }
                  Operand G = rows_operand(dy);  // (R, out)
                  std::vector<Tensor> grads(has_bias ? 3 : 2);
                  if (needs[0]) {  // dx = dy @ W
                    grads[0] = Tensor::empty(x_shape, g.dtype(), g.device());
                    gemm(G, W, grads[0], 1, rows, in_f, out_f);
                  }
                  if (needs[1]) {  // dW = dy^T @ x, the inner dimension running over all rows
                    grads[1] = Tensor::empty({out_f, in_f}, g.dtype(), g.device());
                    gemm(G.t(), X, grads[1], 1, out_f, in_f, rows);
                  }
                  if (has_bias && needs[2]) grads[2] = sum_to(dy, {out_f});  // db = sum over rows of dy
                  return grads;
                });
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  return linear_impl("linear", x, weight, bias, false);
}

Tensor linear_gelu(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  return linear_impl("linear_gelu", x, weight, bias, true);
}

}  // namespace sanf
