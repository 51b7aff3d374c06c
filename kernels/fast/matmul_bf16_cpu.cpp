// kernels/fast/matmul_bf16_cpu.cpp: the bf16-operand GEMM on the CPU, by definition (kernels/fast/matmul_bf16.h):
// widen A and B to f32 (exact: a bf16 is the top half of an f32), then the ordinary f32 GEMM with the same
// leading dimensions, batch strides, bias and GELU. So the result is, bit for bit, the f32 GEMM of the
// rounded operands (plus `add`, in f32, afterwards): what a test can compute independently. The f32 kernel
// itself (kernels/cpu/matmul.cpp) is untouched; this file only prepares its operands (and adds `add` and
// rounds the result, for a bf16 `out`).
#include "kernels/fast/matmul_bf16.h"

namespace sanf::kernels::cpu {

void gemm_bf16(const GemmArgs& g, bf16* out, const float* add) {
  // Stored shapes (row-major): A is M x K, or K x M with trans_a; B is K x N, or N x K with trans_b.
  const int64_t a_rows = g.trans_a ? g.K : g.M, a_cols = g.trans_a ? g.M : g.K;
  const int64_t b_rows = g.trans_b ? g.N : g.K, b_cols = g.trans_b ? g.K : g.N;
  const Tensor a = widen_bf16(Device::CPU, g.A, operand_span(a_rows, a_cols, g.lda, g.stride_a, g.batch));
  const Tensor b = widen_bf16(Device::CPU, g.B, operand_span(b_rows, b_cols, g.ldb, g.stride_b, g.batch));
  GemmArgs f = g;
  f.A = a.data_ptr();
  f.B = b.data_ptr();
  gemm(DType::F32, f);
  if (add != nullptr) {  // one matrix (checked by the dispatcher): C += add, row by row
    float* C = static_cast<float*>(g.C);
    for (int64_t i = 0; i < g.M; ++i)
      for (int64_t j = 0; j < g.N; ++j) C[i * g.ldc + j] += add[i * g.ldc + j];
  }
  if (out == nullptr) return;
  // C's layout, read and written by the copy kernel (f32 -> bf16, as to(x, BF16)); a shared C is one result.
  const Layout l = make_layout({g.stride_c == 0 ? 1 : g.batch, g.M, g.N}, {g.stride_c, g.ldc, 1});
  copy(DType::F32, g.C, l, DType::BF16, out, l);
}

}  // namespace sanf::kernels::cpu
