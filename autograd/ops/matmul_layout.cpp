// autograd/ops/matmul_layout.cpp: describing tensors as the GEMM kernel reads them (see matmul_layout.h).
#include "autograd/ops/matmul_layout.h"

#include <optional>

#include "kernels/matmul.h"

namespace sanf::ops_detail {

namespace {

// The one stride S such that batch element b (flattened over the first nb dims of v) starts at b * S, if
// there is one. Size-1 dims are skipped; all-broadcast dims give S = 0.
std::optional<int64_t> single_batch_stride(const Tensor& v, int nb) {
  int64_t stride = 0, span = 1;
  bool found = false;
  for (int d = nb - 1; d >= 0; --d) {
    const int64_t n = v.shape()[size_t(d)], s = v.strides()[size_t(d)];
    if (n == 1) continue;
    if (!found) {
      stride = s, found = true;
    } else if (s != stride * span) {
      return std::nullopt;
    }
    span *= n;
  }
  return stride;
}

// Whether an (R, C) matrix with strides (sr, sc) can be read in place: row-major with ld = sr, or
// column-major (trans) with ld = sc. Strides of size-1 dims do not matter; ld >= the row length always
// holds, as BLAS requires (an expanded matrix with stride 0 rows is not accepted).
bool in_place_layout(int64_t R, int64_t C, int64_t sr, int64_t sc, bool& trans, int64_t& ld) {
  if ((C == 1 || sc == 1) && (R == 1 || sr >= std::max<int64_t>(C, 1))) {
    trans = false, ld = R == 1 ? std::max<int64_t>(C, 1) : sr;
    return true;
  }
  if ((R == 1 || sr == 1) && (C == 1 || sc >= std::max<int64_t>(R, 1))) {
    trans = true, ld = C == 1 ? std::max<int64_t>(R, 1) : sc;
    return true;
  }
  return false;
}

}  // namespace

// v: (batch..., R, C), any strides (broadcast included). Copies only what the kernel cannot read in place.
Operand as_operand(const Tensor& v) {
  const int nd = v.dim();
  const int64_t R = v.shape()[size_t(nd - 2)], C = v.shape()[size_t(nd - 1)];
  Operand o;
  std::optional<int64_t> s = single_batch_stride(v, nd - 2);
  if (s && in_place_layout(R, C, v.strides()[size_t(nd - 2)], v.strides()[size_t(nd - 1)], o.trans, o.ld)) {
    o.data = v, o.stride = *s;
    return o;
  }
  o.data = dense(v), o.trans = false, o.ld = std::max<int64_t>(C, 1), o.stride = R * C;
  return o;
}

// The number of rows of x: (..., C), the product of its leading dims.
int64_t count_rows(const Tensor& x) { return numel(Shape(x.shape().begin(), x.shape().end() - 1)); }

// x: (..., C) as one (rows, C) matrix: a view when the leading dims are one stride apart, else a copy.
Operand rows_operand(const Tensor& x) {
  const int nd = x.dim();
  const int64_t C = x.shape()[size_t(nd - 1)], rows = count_rows(x);
  std::optional<int64_t> s = single_batch_stride(x, nd - 1);
  Tensor src = s ? x : dense(x);
  const int64_t row_stride = s ? *s : C;
  return as_operand(src.as_strided({rows, C}, {row_stride, src.strides()[size_t(nd - 1)]}, src.offset()));
}

// out (contiguous, batch x M x N) = act(a @ b + beta * out + bias), with a the (batch, M, K) stack and b
// the (batch, K, N) stack; bias (contiguous, N) optional, act GELU or the identity.
void gemm(const Operand& a, const Operand& b, const Tensor& out, int64_t batch, int64_t M, int64_t N, int64_t K,
          double beta, const Tensor& bias, bool gelu) {
  kernels::GemmArgs g;
  g.trans_a = a.trans, g.trans_b = b.trans;
  g.M = M, g.N = N, g.K = K;
  g.beta = beta;
  g.A = a.data.data_ptr(), g.lda = a.ld, g.stride_a = a.stride;
  g.B = b.data.data_ptr(), g.ldb = b.ld, g.stride_b = b.stride;
  g.C = out.data_ptr(), g.ldc = std::max<int64_t>(N, 1), g.stride_c = M * N;
  g.batch = batch;
  g.bias = bias.defined() ? bias.data_ptr() : nullptr;
  g.gelu = gelu;
  // One b for the whole batch and row-major a's one after another: a single GEMM of batch*M rows.
  if (batch > 1 && b.stride == 0 && !a.trans && a.stride == M * a.ld) g.M = batch * M, g.batch = 1;
  if (out.numel() == 0) return;
  kernels::gemm(out.device(), out.dtype(), g);
}

}  // namespace sanf::ops_detail
