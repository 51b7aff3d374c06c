// kernels/matmul.h: batched, strided general matrix multiply (GEMM), row-major.
//
// For b in [0, batch):   C_b = act(alpha * op(A_b) @ op(B_b) + beta * C_b + bias)
// where C_b is M x N with row stride ldc at C + b*stride_c; op(A_b) is M x K: A_b is stored M x K (row
// stride lda) or, with trans_a, K x M (row stride lda) and read transposed; likewise op(B_b) is K x N, stored
// K x N or, with trans_b, N x K. A batch stride of 0 broadcasts one matrix over the batch. With beta == 0, C
// is not read (it may hold garbage or NaN).
// Transposed operands are how linear (x W^T), attention (q K^T) and every backward avoid copies.
// The epilogue is optional: bias (N values, one per column, the same for every row and batch) and act
// (identity, or the exact GELU x Phi(x)) are applied to each element once, as it is written: linear's bias
// and the ViT MLP's GELU cost no extra pass over C. Batches that share C (stride_c == 0) apply it after each
// batch, as the reference does.
//
// cpu::gemm is the blocked, packed, OpenMP-parallel kernel; cpu::gemm_reference is the plain triple loop
// that defines it, kept for tests. cuda::gemm calls cuBLAS.
#pragma once

#include "kernels/dispatch.h"
#include "kernels/elementwise_math.h"

namespace sanf::kernels {

struct GemmArgs {
  bool trans_a = false, trans_b = false;
  int64_t M = 0, N = 0, K = 0;
  double alpha = 1.0, beta = 0.0;
  const void* A = nullptr;
  int64_t lda = 0, stride_a = 0;
  const void* B = nullptr;
  int64_t ldb = 0, stride_b = 0;
  void* C = nullptr;
  int64_t ldc = 0, stride_c = 0;
  int64_t batch = 1;
  const void* bias = nullptr;  // N contiguous values of the GEMM's dtype, or nullptr
  bool gelu = false;           // act = GELU (exact, erf form); false: identity
};

// One element of the definition, summed in double: C[i][j] = act(alpha * sum_k op(A)[i][k] op(B)[k][j]
// + beta * C[i][j] + bias[j]), with C not read when beta == 0; the bias and GELU in double too. A, B, C
// point at the batch element. The reference kernels (cpu::gemm_reference, and the CUDA fallback for what
// cuBLAS is not given) are loops around it.
template <typename T>
SANF_HD void gemm_element(const GemmArgs& g, const T* A, const T* B, T* C, int64_t i, int64_t j) {
  double s = 0;
  for (int64_t k = 0; k < g.K; ++k) {
    const T a = g.trans_a ? A[k * g.lda + i] : A[i * g.lda + k];  // op(A)[i][k]
    const T b = g.trans_b ? B[j * g.ldb + k] : B[k * g.ldb + j];  // op(B)[k][j]
    s += double(a) * double(b);
  }
  T& c = C[i * g.ldc + j];
  double v = g.beta == 0 ? g.alpha * s : g.alpha * s + g.beta * double(c);
  if (g.bias != nullptr) v += double(static_cast<const T*>(g.bias)[j]);
  if (g.gelu) v = unary_value(UnaryOp::Gelu, v, 0.0);
  c = T(v);
}

namespace cpu {
void gemm(DType dt, const GemmArgs& g);
void gemm_reference(DType dt, const GemmArgs& g);

// The f32 micro-kernel's register tile (kernels/cpu/matmul.cpp): Auto takes 12 x 32 (Wide) where the CPU
// has AVX-512F and 6 x 16 (Narrow) elsewhere. Both are compiled for every ISA level, so either runs on any
// x86-64 CPU; forcing one (process-wide) is for the tests, which check both, and for benchmarks.
enum class GemmTile { Auto, Narrow, Wide };
void set_gemm_tile(GemmTile tile);
const char* gemm_tile_name();  // the f32 tile gemm uses now: "6x16" or "12x32"
}  // namespace cpu
namespace cuda {
void gemm(DType dt, const GemmArgs& g);
}  // namespace cuda

inline void gemm(Device device, DType dt, const GemmArgs& g) {
  SANF_DEVICE_SWITCH(device, "matmul", cpu::gemm(dt, g), cuda::gemm(dt, g));
}

}  // namespace sanf::kernels
