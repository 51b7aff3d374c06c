// tests/cuda/test_cuda_gemm.cpp: kernels::cuda::gemm (cuBLAS, with the row-major -> column-major operand
// swap) against kernels::cpu::gemm_reference, the triple loop that defines the contract: odd sizes, every
// transpose combination, alpha and beta (beta = 0 must not read C, so C starts as NaN), padded leading
// dimensions, batch strides of 0 on either input, a shared C that accumulates over the batch, K = 0, an
// operand whose rows overlap (row stride 0, which cuBLAS cannot take), and the TF32 switch: within TF32's
// error of f32, and TF32's rounding of the operands really taking place (through cuBLAS, and through
// cuBLASLt for a GEMM with a bias when set_cublaslt is on). Then kernels::cuda::gemm_bf16
// against kernels::cpu::gemm_bf16 with a shared C and a bf16 result.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cuda_options.h"
#include "kernels/matmul.h"
#include "kernels/fast/matmul_bf16.h"
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

namespace {

// A float in [1, 2) whose top 10 mantissa bits (TF32's) come from h, plus 2048..4095 units of f32's last
// place (2^-23) in the 13 bits TF32 drops: less than half a TF32 place (4096 units), so rounding to nearest
// and truncating to TF32 agree, and the float lies 2^-12 to 2^-11 above its TF32 value.
float tf32_plus_tail(uint64_t h) {
  const uint32_t top = uint32_t(h % 1024), tail = 2048 + uint32_t((h >> 10) % 2048);
  const uint32_t bits = (127u << 23) | (top << 13) | tail;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// x rounded to TF32 (8-bit exponent, 10-bit mantissa), to nearest with ties to even, as cvt.rn.tf32.f32.
float round_tf32(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  b += 0xfffu + ((b >> 13) & 1u);
  b &= ~0x1fffu;
  float r;
  std::memcpy(&r, &b, sizeof r);
  return r;
}

uint64_t mix(uint64_t z) {  // splitmix64's finaliser: a well-spread hash of an index
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Whether TF32 mode rounds a GEMM's operands to TF32 and f32 mode does not: through cuBLAS (lt false), or
// through cuBLASLt (lt: with a bias of zeros and set_cublaslt on).
void check_tf32_rounding(bool lt) {
  struct Restore {
    ~Restore() { kernels::set_tf32(false); }
  } restore;
  // All operands are positive with a tail below TF32's precision (tf32_plus_tail), so every product loses
  // 2^-11 or more of its at most 4 under TF32, and the sums cannot cancel: each element of the TF32 result
  // lies at least 1.2e-4 (typically ~5e-4) below the exact one, relative, while an f32 GEMM of 128 positive
  // terms is within 128 * 2^-24 = 7.6e-6 of it. The TF32 result must match the CPU emulation (operands
  // rounded to TF32, products and sums in double) to f32 accumulation error. 512 x 512 x 128: large
  // enough that cuBLAS takes a tensor-core kernel when TF32 is allowed.
  const int64_t M = 512, N = 512, K = 128;
  // The logical A (M x K) and B (K x N), row-major.
  std::vector<float> a(static_cast<size_t>(M * K)), b(static_cast<size_t>(K * N));
  bool rounded_down = true;  // (so rounding and truncation agree)
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = tf32_plus_tail(mix(2 * i));
    rounded_down = rounded_down && round_tf32(a[i]) < a[i];
  }
  for (size_t i = 0; i < b.size(); ++i) {
    b[i] = tf32_plus_tail(mix(2 * i + 1));
    rounded_down = rounded_down && round_tf32(b[i]) < b[i];
  }
  REQUIRE(rounded_down);
  std::vector<double> exact(static_cast<size_t>(M * N)), emulated(static_cast<size_t>(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0, t = 0;
      for (int64_t k = 0; k < K; ++k) {
        const float x = a[size_t(i * K + k)], y = b[size_t(k * N + j)];
        s += double(x) * double(y);
        t += double(round_tf32(x)) * double(round_tf32(y));
      }
      exact[size_t(i * N + j)] = s, emulated[size_t(i * N + j)] = t;
    }

  // Relative distances of a result to the exact products and to the TF32 emulation, smallest and largest.
  struct Distances {
    double min_exact = INFINITY, max_exact = 0, min_emulated = INFINITY, max_emulated = 0;
  };
  // The GEMM on the device with the operands stored as `t` asks (bit 0: A transposed, bit 1: B transposed);
  // with `lt`, a bias of zeros and cuBLASLt switched on, so cuBLASLt runs it (in the same compute mode).
  auto run = [&](int t) {
    const GemmArgs g0 = dense(M, N, K, t & 1, t & 2, 1.0, 0.0);
    std::vector<double> av(a.size()), bv(b.size());
    for (int64_t i = 0; i < M; ++i)
      for (int64_t k = 0; k < K; ++k) av[size_t(g0.trans_a ? k * M + i : i * K + k)] = a[size_t(i * K + k)];
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < N; ++j) bv[size_t(g0.trans_b ? j * K + k : k * N + j)] = b[size_t(k * N + j)];
    const Tensor ga = Tensor::from_vector(av, {int64_t(av.size())}, DType::F32, Device::CUDA);
    const Tensor gb = Tensor::from_vector(bv, {int64_t(bv.size())}, DType::F32, Device::CUDA);
    const Tensor gc = full({M * N}, NAN, DType::F32, Device::CUDA);
    GemmArgs g = g0;
    g.A = ga.data_ptr(), g.B = gb.data_ptr(), g.C = gc.data_ptr();
    const Tensor zero_bias = zeros({N}, DType::F32, Device::CUDA);
    const long long lt0 = kernels::cublaslt_gemm_count();
    if (lt) g.bias = zero_bias.data_ptr();
    {
      const kernels::ScopedSwitch lt_switch(kernels::set_cublaslt, kernels::cublaslt_enabled, lt);
      kernels::gemm(Device::CUDA, DType::F32, g);
    }
    if (lt) CHECK_MESSAGE(kernels::cublaslt_gemm_count() == lt0 + 1, "cuBLASLt did not run the GEMM");
    const std::vector<double> c = gc.to_vector();
    Distances d;
    for (size_t e = 0; e < c.size(); ++e) {
      double to_exact = std::fabs(c[e] - exact[e]) / exact[e],
             to_emulated = std::fabs(c[e] - emulated[e]) / emulated[e];
      if (std::isnan(to_exact)) to_exact = to_emulated = INFINITY;  // an element not written (still NaN)
      d.min_exact = std::min(d.min_exact, to_exact), d.max_exact = std::max(d.max_exact, to_exact);
      d.min_emulated = std::min(d.min_emulated, to_emulated), d.max_emulated = std::max(d.max_emulated, to_emulated);
    }
    return d;
  };

  // A @ B and A @ B^T (linear's layout) through cuBLAS; A @ B^T (with a bias) through cuBLASLt.
  for (const int t : lt ? std::vector<int>{2} : std::vector<int>{0, 2}) {
    INFO("trans_b ", bool(t & 2), ", cuBLASLt ", lt);
    kernels::set_tf32(true);
    const Distances tf32 = run(t);
    kernels::set_tf32(false);
    const Distances f32 = run(t);
    MESSAGE("TF32 GEMM (trans_b ", bool(t & 2), ", cuBLASLt ", lt, "): relative distance to exact ", tf32.min_exact,
            " .. ", tf32.max_exact, ", to the TF32 emulation <= ", tf32.max_emulated,
            "; f32 GEMM: to exact <= ", f32.max_exact);
    CHECK_MESSAGE(tf32.min_exact > 1e-4, "an element of the TF32 GEMM is within f32 error of exact: TF32 not used");
    CHECK(tf32.max_emulated < 3e-5);
    CHECK(f32.max_exact < 3e-5);
    CHECK(f32.min_emulated > 1e-4);
  }
}

}  // namespace

TEST_CASE("cuda parity: gemm under TF32 rounds the operands to 10 mantissa bits, and f32 mode does not") {
  SANF_SKIP_WITHOUT_CUDA();
  check_tf32_rounding(false);
}

TEST_CASE("cuda parity: cuBLASLt's f32 GEMM with a bias rounds to TF32 in TF32 mode only, and ran") {
  SANF_SKIP_WITHOUT_CUDA();
  check_tf32_rounding(true);
}

TEST_CASE("cuda bf16: gemm_bf16 with a shared C (batch stride 0) and a bf16 result matches the CPU's") {
  SANF_SKIP_WITHOUT_CUDA();
  // Three batches accumulate into one C, in order, each with its epilogue (bias, GELU), and the bf16 result
  // is the final C rounded once. Through cuBLAS (dense operands), and through the widened f32 path
  // (an operand whose rows overlap, lda 0, and K = 0), with beta 0 (C not read: NaN), 1 and 0.5.
  struct Path {
    const char* name;
    int64_t M, N, K;
    bool overlap;
  };
  uint64_t seed = 3000;
  for (const Path p : {Path{"cuBLAS", 7, 9, 5, false}, Path{"cuBLAS, ViT-sized", 64, 96, 128, false},
                       Path{"widened, overlapping rows", 7, 9, 5, true}, Path{"widened, K = 0", 7, 9, 0, false}})
    for (double beta : {0.0, 1.0, 0.5})
      for (int epi = 0; epi < 3; ++epi) {                              // 0: none, 1: bias, 2: bias and GELU
        GemmArgs g = dense(p.M, p.N, p.K, false, true, 1.0, beta, 3);  // A (M x K) @ B^T: linear's layout
        g.stride_c = 0;
        if (p.overlap) g.lda = 0;
        INFO("path ", p.name, " M ", g.M, " N ", g.N, " K ", g.K, " beta ", beta, " epilogue ", epi);
        const int64_t a_len = extent(g.batch, g.stride_a, g.M, g.K, g.lda);
        const int64_t b_len = extent(g.batch, g.stride_b, g.N, g.K, g.ldb), c_len = g.M * g.ldc;
        const Tensor ca = to(testing::rnd({a_len}, seed++), DType::BF16);
        const Tensor cb = to(testing::rnd({b_len}, seed++, 0.3), DType::BF16);
        Tensor cc = to(beta == 0 ? full({c_len}, NAN, DType::F64) : testing::rnd({c_len}, seed++), DType::F32);
        const Tensor cbias = to(testing::rnd({g.N}, seed++), DType::F32);
        Tensor cout = full({c_len}, NAN, DType::BF16);
        const Tensor ga = ca.copy_to_device(Device::CUDA), gb = cb.copy_to_device(Device::CUDA),
                     gbias = cbias.copy_to_device(Device::CUDA);
        Tensor gc = cc.copy_to_device(Device::CUDA), gout = cout.copy_to_device(Device::CUDA);
        GemmArgs on_cpu = g, on_gpu = g;
        on_cpu.A = ca.data_ptr(), on_cpu.B = cb.data_ptr(), on_cpu.C = cc.data_ptr();
        on_gpu.A = ga.data_ptr(), on_gpu.B = gb.data_ptr(), on_gpu.C = gc.data_ptr();
        on_cpu.bias = epi >= 1 ? cbias.data_ptr() : nullptr, on_gpu.bias = epi >= 1 ? gbias.data_ptr() : nullptr;
        on_cpu.gelu = on_gpu.gelu = epi == 2;
        kernels::gemm_bf16(Device::CPU, on_cpu, cout.data<bf16>());
        kernels::gemm_bf16(Device::CUDA, on_gpu, gout.data<bf16>());
        // C: the same products summed in another order (f32), over three accumulations and epilogues.
        expect_close("shared C (f32)", gc, cc, Tol{1e-4, 1e-4});
        // The bf16 result is the device's own final C rounded, bit for bit ...
        expect_equal("bf16 result = the final C rounded", gout, to(gc, DType::BF16));
        // ... and the CPU's to within a bf16 rounding (the f32 Cs may round to neighbouring bf16s).
        expect_close("bf16 result vs the CPU's", to(gout, DType::F32), to(cout, DType::F32), Tol{1e-2, 1e-3});
      }
}
