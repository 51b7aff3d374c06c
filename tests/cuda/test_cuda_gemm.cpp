// tests/cuda/test_cuda_gemm.cpp: kernels::cuda::gemm (cuBLAS, with the row-major -> column-major operand
// swap) against kernels::cpu::gemm_reference, the triple loop that defines the contract: odd sizes, every
// transpose combination, alpha and beta (beta = 0 must not read C, so C starts as NaN), padded leading
// dimensions, batch strides of 0 on either input, a shared C that accumulates over the batch, K = 0, an
// operand whose rows overlap (row stride 0, which cuBLAS cannot take), and the TF32 switch.
#include <doctest/doctest.h>

#include <cmath>

#include "kernels/cuda_options.h"
#include "kernels/matmul.h"
#include "tests/cuda/parity.h"

using namespace sanf;
using namespace sanf::cuda_testing;
using kernels::GemmArgs;

namespace {

// Elements a strided stack of `batch` row-major (rows x cols) matrices reaches.
int64_t extent(int64_t batch, int64_t stride, int64_t rows, int64_t cols, int64_t ld) {
  if (rows == 0 || cols == 0 || batch == 0) return 1;
  return (batch - 1) * stride + (rows - 1) * ld + cols;
}

// Runs one GEMM on both devices over the same buffers and compares all of C's buffer (also what lies
// between the rows, which must be left alone).
void gemm_case(const std::string& name, DType dt, GemmArgs g, uint64_t seed, Tol tol) {
  INFO("gemm case: ", name, " ", dtype_name(dt), " M ", g.M, " N ", g.N, " K ", g.K, " trans_a ", g.trans_a,
       " trans_b ", g.trans_b, " alpha ", g.alpha, " beta ", g.beta, " batch ", g.batch, " lda ", g.lda, " ldb ", g.ldb,
       " ldc ", g.ldc, " strides ", g.stride_a, " ", g.stride_b, " ", g.stride_c);
  const int64_t a_rows = g.trans_a ? g.K : g.M, a_cols = g.trans_a ? g.M : g.K;
  const int64_t b_rows = g.trans_b ? g.N : g.K, b_cols = g.trans_b ? g.K : g.N;
  const Tensor ha = testing::rnd({extent(g.batch, g.stride_a, a_rows, a_cols, g.lda)}, seed);
  const Tensor hb = testing::rnd({extent(g.batch, g.stride_b, b_rows, b_cols, g.ldb)}, seed + 1);
  const int64_t c_len = extent(g.batch, g.stride_c, g.M, g.N, g.ldc);
  Tensor hc = g.beta == 0 ? full({c_len}, NAN, DType::F64) : testing::rnd({c_len}, seed + 2);

  Tensor ca = to(ha, dt), cb = to(hb, dt), cc = to(hc, dt);
  Tensor ga = ca.copy_to_device(Device::CUDA), gb = cb.copy_to_device(Device::CUDA),
         gc = cc.copy_to_device(Device::CUDA);
  GemmArgs on_cpu = g, on_gpu = g;
  on_cpu.A = ca.data_ptr(), on_cpu.B = cb.data_ptr(), on_cpu.C = cc.data_ptr();
  on_gpu.A = ga.data_ptr(), on_gpu.B = gb.data_ptr(), on_gpu.C = gc.data_ptr();
  kernels::cpu::gemm_reference(dt, on_cpu);
  kernels::gemm(Device::CUDA, dt, on_gpu);  // the device switch: kernels::cuda::gemm in a CUDA build
  expect_close(name, gc, cc, tol);
}

// A dense problem: ld = the stored row length (+ pad), contiguous batches.
GemmArgs dense(int64_t M, int64_t N, int64_t K, bool ta, bool tb, double alpha, double beta, int64_t batch = 1,
               int64_t pad = 0) {
  GemmArgs g;
  g.trans_a = ta, g.trans_b = tb;
  g.M = M, g.N = N, g.K = K;
  g.alpha = alpha, g.beta = beta;
  g.lda = (ta ? M : K) + pad, g.ldb = (tb ? K : N) + pad, g.ldc = N + pad;
  g.stride_a = (ta ? K : M) * g.lda, g.stride_b = (tb ? N : K) * g.ldb, g.stride_c = M * g.ldc;
  g.batch = batch;
  return g;
}

}  // namespace

TEST_CASE("cuda parity: gemm against the reference (sizes, transposes, alpha, beta)") {
  SANF_SKIP_WITHOUT_CUDA();
  struct Size {
    int64_t M, N, K;
  };
  uint64_t seed = 1;
  for (DType dt : {DType::F32, DType::F64}) {
    const Tol tol = tol_for(dt);
    for (Size s : {Size{37, 53, 29}, Size{1, 1, 1}, Size{1, 17, 40}, Size{17, 1, 40}, Size{5, 300, 7}, Size{300, 5, 7},
                   Size{64, 64, 64}, Size{130, 257, 311}})
      for (int t = 0; t < 4; ++t)
        for (double beta : {0.0, 1.0, 0.5}) {
          const double alpha = beta == 0.5 ? -1.5 : 1.0;
          gemm_case("dense", dt, dense(s.M, s.N, s.K, t & 1, t & 2, alpha, beta), seed++, tol);
        }
  }
}

TEST_CASE("cuda parity: gemm batches, strides and edge cases") {
  SANF_SKIP_WITHOUT_CUDA();
  uint64_t seed = 1000;
  for (DType dt : {DType::F32, DType::F64}) {
    const Tol tol = tol_for(dt);
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      // Batched, contiguous batches, and with padding between rows.
      gemm_case("batched", dt, dense(19, 23, 11, ta, tb, 1.0, 0.0, 4), seed++, tol);
      gemm_case("batched padded ld", dt, dense(19, 23, 11, ta, tb, 0.75, 0.5, 3, 5), seed++, tol);
      // Batch stride 0: one A (or one B) for every batch.
      GemmArgs ga = dense(9, 14, 6, ta, tb, 1.0, 0.0, 5);
      ga.stride_a = 0;
      gemm_case("shared A", dt, ga, seed++, tol);
      GemmArgs gb = dense(9, 14, 6, ta, tb, 1.0, 1.0, 5);
      gb.stride_b = 0;
      gemm_case("shared B", dt, gb, seed++, tol);
      // Batch stride 0 for C: the batches accumulate into one matrix, in order (beta applied each time).
      for (double beta : {0.0, 1.0, 0.5}) {
        GemmArgs gc = dense(7, 8, 5, ta, tb, 1.0, beta, 3);
        gc.stride_c = 0;
        gemm_case("shared C accumulates", dt, gc, seed++, tol);
      }
      // Batch strides larger than a matrix (matrices with gaps between them).
      GemmArgs gap = dense(6, 5, 4, ta, tb, 1.0, 0.0, 3);
      gap.stride_a += 7, gap.stride_b += 3, gap.stride_c += 11;
      gemm_case("gaps between batches", dt, gap, seed++, tol);
    }
    // K = 0: C = beta * C (zeros when beta = 0, without reading the NaNs).
    for (double beta : {0.0, 1.0, 0.5}) {
      gemm_case("K = 0", dt, dense(4, 6, 0, false, false, 1.0, beta, 2), seed++, tol);
      GemmArgs shared = dense(4, 6, 0, false, false, 1.0, beta, 3);
      shared.stride_c = 0;
      gemm_case("K = 0 shared C", dt, shared, seed++, tol);
    }
    // M, N or batch 0: nothing to do (C untouched).
    gemm_case("M = 0", dt, dense(0, 6, 3, false, false, 1.0, 1.0), seed++, tol);
    gemm_case("batch = 0", dt, dense(3, 6, 3, false, false, 1.0, 1.0, 0), seed++, tol);
    // One row: any ld (here 0) is fine for it.
    GemmArgs row = dense(1, 9, 5, false, false, 1.0, 0.0);
    row.lda = 0;
    gemm_case("single row with ld 0", dt, row, seed++, tol);
    // Overlapping rows (an expanded operand, row stride 0): not a cuBLAS layout, the plain kernel runs.
    for (int t = 0; t < 4; ++t) {
      GemmArgs over = dense(6, 7, 5, t & 1, t & 2, 1.0, 0.5, 2);
      over.lda = 0, over.ldb = 1;
      gemm_case("overlapping rows", dt, over, seed++, tol);
    }
  }
}

TEST_CASE("cuda parity: gemm with TF32 switched on and off") {
  SANF_SKIP_WITHOUT_CUDA();
  struct Restore {
    ~Restore() { kernels::set_tf32(false); }
  } restore;
  CHECK_FALSE(kernels::tf32_enabled());
  kernels::set_tf32(true);
  CHECK(kernels::tf32_enabled());
  // TF32 keeps 10 mantissa bits of the inputs: relative errors of about 1e-3 of the result's scale.
  gemm_case("tf32", DType::F32, dense(256, 192, 320, false, true, 1.0, 0.0), 77, Tol{1e-2, 2e-3});
  // f64 is not affected.
  gemm_case("tf32 on, f64", DType::F64, dense(64, 48, 80, false, false, 1.0, 0.0), 78, tol_for(DType::F64));
  kernels::set_tf32(false);
  CHECK_FALSE(kernels::tf32_enabled());
  // Back to full FP32.
  gemm_case("fp32 again", DType::F32, dense(256, 192, 320, false, true, 1.0, 0.0), 79, tol_for(DType::F32));
}
