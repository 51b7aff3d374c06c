// kernels/fast/matmul_bf16.h: GEMM with bf16 operands, f32 accumulation and an f32 result (inference).
//
// The contract is kernels/matmul.h's, C_b = act(alpha * op(A_b) @ op(B_b) + beta * C_b + bias), with A and B
// pointing at bf16 values (8-bit mantissa) and C and the bias at f32 values. Every product of two bf16
// numbers is exact in f32 (8 + 8 significant bits), so the result differs from the f32 GEMM of the same
// (already rounded) operands only by the order of the f32 sums.
//
// cuda::gemm_bf16 is one cublasGemmStridedBatchedEx call: CUDA_R_16BF inputs, CUBLAS_COMPUTE_32F, CUDA_R_32F
// output, on the tensor cores (sm_80 and later) at about twice TF32's and many times f32's throughput; the
// epilogue (bias, GELU) in f32 after it, as for f32. cpu::gemm_bf16 is the plain definition: it widens the
// operands to f32 (exactly) and runs the f32 GEMM (kernels/cpu/matmul.cpp) on them. It is there so the bf16
// path means the same thing on both devices and can be tested on a machine without a GPU; it is not
// faster than f32 on the CPU (the widening is an extra pass over the operands).
#pragma once

#include "kernels/copy.h"
#include "kernels/matmul.h"

namespace sanf::kernels {

// out (optional): a bf16 result. When given, the final C (after the epilogue) is also stored, rounded to
// bf16, at out with C's layout (ldc, stride_c); g.C is then the f32 result the caller uses as scratch. This
// is how a bf16 GEMM whose result only feeds another bf16 GEMM (the MLP's fc1 + GELU before fc2, attention's
// A v before proj) hands it on: the same numbers the next GEMM would round it to, without an f32 result
// being read back and converted (on CUDA the epilogue kernel writes the bf16 values directly).
//
// add (optional, f32; one matrix: batch 1, beta 0; not C itself): added last, C = act(alpha A B + bias) +
// add, with C's layout (ldc). How a linear layer that feeds a residual stream adds the stream in its own GEMM
// (linear_bf16's residual). On the CPU it is the f32 addition after the GEMM, so the result is bit for bit
// add(residual, linear_bf16(...)); on CUDA with cuBLASLt switched on (kernels/cuda_options.h) it is
// cuBLASLt's C input and the bias its epilogue, in whatever order cuBLASLt adds them, so the two differ by
// f32 rounding.
//
// With `out`, what C holds afterwards differs by device (the CPU: the final values; CUDA: the bare product):
// a caller uses only `out`.
namespace cpu {
void gemm_bf16(const GemmArgs& g, bf16* out = nullptr, const float* add = nullptr);  // g.A, g.B: bf16; g.C, g.bias: f32
}  // namespace cpu
namespace cuda {
void gemm_bf16(const GemmArgs& g, bf16* out = nullptr, const float* add = nullptr);
}  // namespace cuda

inline void gemm_bf16(Device device, const GemmArgs& g, bf16* out = nullptr, const float* add = nullptr) {
  SANF_CHECK(add == nullptr || (g.batch == 1 && g.beta == 0 && add != g.C), "[matmul_bf16] a GEMM with an added "
             "matrix must be one matrix with beta 0, written elsewhere than the added matrix; got batch ", g.batch,
             ", beta ", g.beta, add == g.C ? ", the added matrix as C" : "");
  SANF_DEVICE_SWITCH(device, "matmul_bf16", cpu::gemm_bf16(g, out, add), cuda::gemm_bf16(g, out, add));
}

// The number of elements an operand stack spans from its first element: `batch` matrices `stride` apart
// (0: one matrix, broadcast), each with `rows` stored rows `ld` apart of `cols` values. What a widened or
// converted copy of the operand must hold so that the same ld and stride address it.
inline int64_t operand_span(int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t batch) {
  if (rows <= 0 || cols <= 0 || batch <= 0) return 0;
  return (batch - 1) * stride + (rows - 1) * ld + cols;
}

// An f32 copy, on `device`, of the `span` bf16 values at p (an operand stack widened whole, gaps between
// rows included, so that the same ld and stride address it), made by the copy kernel. Exact.
inline Tensor widen_bf16(Device device, const void* p, int64_t span) {
  Tensor out = Tensor::empty({std::max<int64_t>(span, 1)}, DType::F32, device);
  if (span <= 0) return out;
  const Layout flat = make_layout({span}, {1});
  SANF_DEVICE_SWITCH(device, "matmul_bf16", cpu::copy(DType::BF16, p, flat, DType::F32, out.data_ptr(), flat),
                     cuda::copy(DType::BF16, p, flat, DType::F32, out.data_ptr(), flat));
  return out;
}

}  // namespace sanf::kernels
