// kernels/cpu/matmul_bf16.cpp: the bf16-operand GEMM on the CPU, by definition (kernels/matmul_bf16.h):
// widen A and B to f32 (exact: a bf16 is the top half of an f32), then the ordinary f32 GEMM with the same
// leading dimensions, batch strides, bias and GELU. So the result is, bit for bit, the f32 GEMM of the
// rounded operands: what a test can compute independently. The f32 kernel itself (kernels/cpu/matmul.cpp)
// is untouched; this file only prepares its operands.
#include <vector>

#include "kernels/cpu/loops.h"
#include "kernels/matmul_bf16.h"

namespace sanf::kernels::cpu {

namespace {
// The span of bf16 values an operand covers, widened to f32 (the gaps between rows, if any, too: they are
// never read, but converting them keeps the addressing identical).
std::vector<float> widen(const void* p, int64_t span) {
  std::vector<float> out(size_t(std::max<int64_t>(span, 0)));
  const auto* src = static_cast<const bf16*>(p);
  parallel_for(span, kGrainCheap, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[size_t(i)] = bf16_bits_to_f32(src[i].bits);
  });
  return out;
}
}  // namespace

void gemm_bf16(const GemmArgs& g) {
  // Stored shapes (row-major): A is M x K, or K x M with trans_a; B is K x N, or N x K with trans_b.
  const int64_t a_rows = g.trans_a ? g.K : g.M, a_cols = g.trans_a ? g.M : g.K;
  const int64_t b_rows = g.trans_b ? g.N : g.K, b_cols = g.trans_b ? g.K : g.N;
  const std::vector<float> a = widen(g.A, operand_span(a_rows, a_cols, g.lda, g.stride_a, g.batch));
  const std::vector<float> b = widen(g.B, operand_span(b_rows, b_cols, g.ldb, g.stride_b, g.batch));
  GemmArgs f = g;
  f.A = a.empty() ? nullptr : a.data();
  f.B = b.empty() ? nullptr : b.data();
  gemm(DType::F32, f);
}

}  // namespace sanf::kernels::cpu
