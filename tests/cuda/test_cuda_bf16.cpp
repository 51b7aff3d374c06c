// tests/cuda/test_cuda_bf16.cpp: the bf16 inference path on CUDA (cublasGemmStridedBatchedEx with bf16
// inputs, f32 accumulation and output) against its CPU definition (operands rounded, f32 GEMM).
//
// Both devices multiply the same bf16 operands exactly and sum in f32, in different orders, so the ops
// agree to f32 rounding (the f32 parity tolerance). Through a whole ViT the rounding of activations to bf16
// can land on the other side of a tie on the two devices, so there the check is against the size of the
// bf16 error itself.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "autograd/fast.h"
#include "autograd/ops.h"
#include "kernels/fast/attention.h"
#include "kernels/cuda_options.h"
#include "tests/cuda/parity.h"
#include "tests/testing/gradcheck.h"
#include "vit/vit.h"

using namespace sanf;
using sanf::testing::rel_l2;
using namespace sanf::cuda_testing;

namespace {
Tensor f32(const Tensor& x, Device dev = Device::CPU) { return to(to(x, DType::F32), dev); }
Tensor cuda(const Tensor& x) { return to(x, Device::CUDA); }

}  // namespace

TEST_CASE("cuda bf16: linear_bf16 matches the CPU's, with and without bias, GELU and residual, f32 or bf16 weights") {
  SANF_SKIP_WITHOUT_CUDA();
  NoGradGuard no_grad;
  const Tol tol = tol_for(DType::F32);
  // Sizes: tiny, odd (no multiple of 8: cuBLAS's slower tensor-core paths), and a ViT-B-like layer.
  const std::vector<std::array<int64_t, 3>> sizes = {{1, 1, 1}, {7, 33, 17}, {394, 768, 2304}};
  for (const auto& sz : sizes) {
    const int64_t rows = sz[0], in = sz[1], out = sz[2];
    INFO("rows ", sz[0], " in ", sz[1], " out ", sz[2]);
    const Tensor x = f32(rin({rows, in}, 1)), w = f32(rin({out, in}, 2, 0.05)), b = f32(rin({out}, 3));
    expect_close("linear_bf16", linear_bf16(cuda(x), cuda(w), cuda(b)), linear_bf16(x, w, b), tol);
    expect_close("linear_bf16 no bias", linear_bf16(cuda(x), cuda(w)), linear_bf16(x, w), tol);
    expect_close("linear_bf16 gelu", linear_bf16(cuda(x), cuda(w), cuda(b), true), linear_bf16(x, w, b, true), tol);
    const Tensor w16 = to(w, DType::BF16);
    expect_close("linear_bf16 bf16 weight", linear_bf16(cuda(x), cuda(w16), cuda(b)), linear_bf16(x, w16, b), tol);
    CHECK(linear_bf16(cuda(x), cuda(w), cuda(b)).device() == Device::CUDA);
    // A residual, added by our epilogue kernel after cuBLAS (cuBLASLt off, the default: its own test below).
    const Tensor r = f32(rin({rows, out}, 8));
    const kernels::ScopedSwitch lt_off(kernels::set_cublaslt, kernels::cublaslt_enabled, false);
    expect_close("residual", linear_bf16(cuda(x), cuda(w), cuda(b), false, DType::F32, cuda(r)),
                 linear_bf16(x, w, b, false, DType::F32, r), tol);
    expect_close("GELU + residual", linear_bf16(cuda(x), cuda(w), cuda(b), true, DType::F32, cuda(r)),
                 linear_bf16(x, w, b, true, DType::F32, r), tol);
  }
  // 3-D x and a transposed view of x.
  const Tensor x3 = f32(rin({2, 5, 24}, 4)), w = f32(rin({6, 24}, 5)), b = f32(rin({6}, 6));
  expect_close("3-D x", linear_bf16(cuda(x3), cuda(w), cuda(b)), linear_bf16(x3, w, b), tol);
  const Tensor xt = f32(rin({24, 9}, 7));
  expect_close("transposed x", linear_bf16(transpose(cuda(xt), 0, 1), cuda(w), cuda(b)),
               linear_bf16(transpose(xt, 0, 1), w, b), tol);
}

TEST_CASE("cuda bf16: linear_bf16 through cuBLASLt (bias epilogue, residual as C) matches the CPU's") {
  SANF_SKIP_WITHOUT_CUDA();
  NoGradGuard no_grad;
  const Tol tol = tol_for(DType::F32);
  {
    const kernels::ScopedSwitch lt_on(kernels::set_cublaslt, kernels::cublaslt_enabled, true);
    // Tiny, odd (no multiple of 8), and ViT-L's proj / fc2 at a small batch.
    const std::vector<std::array<int64_t, 3>> sizes = {{1, 1, 1}, {7, 33, 17}, {394, 1024, 1024}, {394, 4096, 1024}};
    for (const auto& sz : sizes) {
      const int64_t rows = sz[0], in = sz[1], out = sz[2];
      INFO("rows ", rows, " in ", in, " out ", out);
      const Tensor x = f32(rin({rows, in}, 21)), w = to(f32(rin({out, in}, 22, 0.05)), DType::BF16);
      const Tensor b = f32(rin({out}, 23)), r = f32(rin({rows, out}, 24));
      const long long count0 = kernels::cublaslt_gemm_count();
      expect_close("bias", linear_bf16(cuda(x), cuda(w), cuda(b)), linear_bf16(x, w, b), tol);
      expect_close("bias + residual", linear_bf16(cuda(x), cuda(w), cuda(b), false, DType::F32, cuda(r)),
                   linear_bf16(x, w, b, false, DType::F32, r), tol);
      expect_close("residual, no bias", linear_bf16(cuda(x), cuda(w), Tensor(), false, DType::F32, cuda(r)),
                   linear_bf16(x, w, Tensor(), false, DType::F32, r), tol);
      const long long lt = kernels::cublaslt_gemm_count() - count0;
      MESSAGE("cuBLASLt ran ", lt, " of the 3 fusable GEMMs");
      if (in >= 1024) CHECK(lt == 3);  // the ViT shapes: cuBLASLt took them, not the fallback
      // Not for cuBLASLt (GELU, a bf16 result): the cuBLAS path, with the residual in its epilogue.
      expect_close("GELU + residual", linear_bf16(cuda(x), cuda(w), cuda(b), true, DType::F32, cuda(r)),
                   linear_bf16(x, w, b, true, DType::F32, r), tol);
      expect_close("bf16 result + residual",
                   to(linear_bf16(cuda(x), cuda(w), cuda(b), false, DType::BF16, cuda(r)), DType::F32),
                   to(linear_bf16(x, w, b, false, DType::BF16, r), DType::F32), Tol{1e-2, 1e-3});
    }
    // A residual at an odd offset (a view one element in): cuBLASLt is told the alignment it has.
    const Tensor x = f32(rin({9, 64}, 25)), w = f32(rin({40, 64}, 26, 0.05)), b = f32(rin({40}, 27));
    const Tensor big = f32(rin({9 * 40 + 1}, 28));
    const Tensor r = reshape(narrow(big, 0, 1, 9 * 40), {9, 40});
    const Tensor r_gpu = reshape(narrow(cuda(big), 0, 1, 9 * 40), {9, 40});
    expect_close("unaligned residual", linear_bf16(cuda(x), cuda(w), cuda(b), false, DType::F32, r_gpu),
                 linear_bf16(x, w, b, false, DType::F32, r), tol);
    // A bias at an odd offset: not for cuBLASLt (its alignment preferences do not cover the bias, and an
    // algorithm that assumed 16 bytes would fault), so the cuBLAS path adds it.
    const Tensor bias_big = f32(rin({41}, 32));
    const Tensor b_odd = narrow(bias_big, 0, 1, 40), b_odd_gpu = narrow(cuda(bias_big), 0, 1, 40);
    const long long before_odd = kernels::cublaslt_gemm_count();
    expect_close("unaligned bias", linear_bf16(cuda(x), cuda(w), b_odd_gpu), linear_bf16(x, w, b_odd), tol);
    CHECK(kernels::cublaslt_gemm_count() == before_odd);
  }
  // Switched off, nothing goes to cuBLASLt.
  const long long before = kernels::cublaslt_gemm_count();
  const Tensor x = f32(rin({9, 64}, 29)), w = f32(rin({40, 64}, 30, 0.05)), b = f32(rin({40}, 31));
  {
    const kernels::ScopedSwitch lt_off(kernels::set_cublaslt, kernels::cublaslt_enabled, false);
    expect_close("switched off", linear_bf16(cuda(x), cuda(w), cuda(b)), linear_bf16(x, w, b), tol);
  }
  CHECK(kernels::cublaslt_gemm_count() == before);
}

TEST_CASE("cuda bf16: matmul_bf16 matches the CPU's: batched, transposed, broadcast, K = 0") {
  SANF_SKIP_WITHOUT_CUDA();
  NoGradGuard no_grad;
  const Tol tol = tol_for(DType::F32);
  const Tensor a = f32(rin({2, 3, 50, 64}, 10)), bm = f32(rin({2, 3, 64, 50}, 11)), k = f32(rin({2, 3, 50, 64}, 12));
  expect_close("batched", matmul_bf16(cuda(a), cuda(bm)), matmul_bf16(a, bm), tol);
  expect_close("q k^T", matmul_bf16(cuda(a), transpose(cuda(k), -2, -1)), matmul_bf16(a, transpose(k, -2, -1)), tol);
  const Tensor w = f32(rin({64, 10}, 13));
  expect_close("shared right", matmul_bf16(cuda(a), cuda(w)), matmul_bf16(a, w), tol);
  const Tensor a2 = f32(rin({50, 64}, 14));
  expect_close("shared left", matmul_bf16(cuda(a2), cuda(bm)), matmul_bf16(a2, bm), tol);
  // K == 0 takes the widened f32 path (cuBLAS is not called): zeros.
  expect_equal("K = 0", matmul_bf16(cuda(f32(rin({4, 0}, 15))), cuda(f32(rin({0, 3}, 16)))), zeros({4, 3}));
  CHECK_THROWS_WITH_AS(matmul_bf16(cuda(a2), bm), doctest::Contains("[matmul_bf16] devices differ"), Error);
}

TEST_CASE("cuda bf16: split_qkv_bf16 is the CPU's, bit for bit (ViT and odd shapes, more rows than one grid)") {
  SANF_SKIP_WITHOUT_CUDA();
  NoGradGuard no_grad;
  // ViT-L's heads at batch 2; odd widths; 70000 rows of one head (the grid's 65536 blocks then loop).
  for (const auto& [B, N, H, hd] :
       std::vector<std::array<int64_t, 4>>{{2, 197, 16, 64}, {3, 5, 5, 3}, {70000, 1, 1, 2}}) {
    INFO("B ", B, " N ", N, " H ", H, " hd ", hd);
    const Tensor qkv = f32(rin({B, N, 3 * H * hd}, 62, 50.0));
    const double scale = 1.0 / std::sqrt(double(hd));
    const auto want = split_qkv_bf16(qkv, H, scale);
    const auto got = split_qkv_bf16(cuda(qkv), H, scale);
    for (int w = 0; w < 3; ++w) {
      CHECK(got[size_t(w)].device() == Device::CUDA);
      expect_equal(cat("split_qkv_bf16 output ", w), to(got[size_t(w)], Device::CPU), want[size_t(w)]);
    }
  }
}

TEST_CASE("cuda bf16: softmax_bf16 is the device's f32 softmax rounded, bit for bit, and matches the CPU's") {
  SANF_SKIP_WITHOUT_CUDA();
  NoGradGuard no_grad;
  for (const Shape& shape : {Shape{2, 3, 197, 197}, Shape{3, 3000}, Shape{70000, 13}}) {
    INFO("shape ", shape_str(shape));
    const Tensor x = f32(rin(shape, 60, 4.0));
    const Tensor y = softmax_bf16(cuda(x), -1);
    CHECK(y.device() == Device::CUDA);
    CHECK(y.dtype() == DType::BF16);
    expect_equal("softmax_bf16 vs to(softmax, bf16) on the device", y, to(softmax(cuda(x), -1), DType::BF16));
    // Against the CPU: the f32 softmaxes differ in the last bits, which can move a value to the
    // neighbouring bf16 (relative 2^-8) now and then.
    CHECK(rel_l2(to(y, DType::F32), to(softmax_bf16(x, -1), DType::F32)) < 1e-3);
  }
}

TEST_CASE("cuda bf16: layer_norm_bf16 is the device's f32 layer norm rounded, bit for bit, and matches the CPU's") {
  SANF_SKIP_WITHOUT_CUDA();
  NoGradGuard no_grad;
  for (const Shape& shape : {Shape{64, 197, 1024}, Shape{3, 37}, Shape{70000, 8}}) {
    INFO("shape ", shape_str(shape));
    const int64_t D = shape.back();
    const Tensor x = f32(rin(shape, 70, 3.0)), w = f32(rin({D}, 71)), b = f32(rin({D}, 72));
    const Tensor y = layer_norm_bf16(cuda(x), cuda(w), cuda(b), 1e-6);
    CHECK(y.device() == Device::CUDA);
    CHECK(y.dtype() == DType::BF16);
    expect_equal("layer_norm_bf16 vs to(layer_norm, bf16) on the device", y,
                 to(layer_norm(cuda(x), cuda(w), cuda(b), 1e-6), DType::BF16));
    // Against the CPU: the f32 results may differ in the last bit, which can move a value to the
    // neighbouring bf16 now and then.
    CHECK(rel_l2(to(y, DType::F32), to(layer_norm_bf16(x, w, b, 1e-6), DType::F32)) < 1e-3);
  }
}

TEST_CASE("cuda bf16: a bf16 result (out = BF16) is the device's f32 result rounded, bit for bit") {
  SANF_SKIP_WITHOUT_CUDA();
  NoGradGuard no_grad;
  // ViT-B-like and odd sizes; the epilogue writes the bf16 values (with and without bias and GELU).
  for (const auto& sz : std::vector<std::array<int64_t, 3>>{{394, 768, 3072}, {7, 33, 17}}) {
    INFO("rows ", sz[0], " in ", sz[1], " out ", sz[2]);
    const Tensor x = cuda(f32(rin({sz[0], sz[1]}, 70))), w = cuda(f32(rin({sz[2], sz[1]}, 71, 0.05)));
    const Tensor b = cuda(f32(rin({sz[2]}, 72)));
    for (bool gelu : {false, true}) {
      expect_equal("linear_bf16 out bf16", linear_bf16(x, w, b, gelu, DType::BF16),
                   to(linear_bf16(x, w, b, gelu), DType::BF16));
      expect_close("linear_bf16 out bf16 vs the CPU", to(linear_bf16(x, w, b, gelu, DType::BF16), DType::F32),
                   to(linear_bf16(to(x, Device::CPU), to(w, Device::CPU), to(b, Device::CPU), gelu, DType::BF16),
                      DType::F32),
                   Tol{1e-2, 1e-3});
    }
  }
  // Attention's A v: batched, and the K == 0 fallback (widened operands, then rounded).
  const Tensor a = cuda(f32(rin({2, 3, 197, 197}, 73))), v = cuda(f32(rin({2, 3, 197, 64}, 74)));
  expect_equal("matmul_bf16 out bf16", matmul_bf16(a, v, DType::BF16), to(matmul_bf16(a, v), DType::BF16));
  const Tensor e = cuda(f32(rin({2, 0}, 75))), f = cuda(f32(rin({0, 3}, 76)));
  expect_equal("matmul_bf16 K = 0 out bf16", matmul_bf16(e, f, DType::BF16), to(matmul_bf16(e, f), DType::BF16));
}

namespace {
// f() with the fused attention switched on, then off (the switch restored after each): {fused, composite}.
template <typename F>
std::pair<Tensor, Tensor> fused_and_composite(F f) {
  const kernels::ScopedSwitch fused(kernels::set_fused_attention, kernels::fused_attention_enabled, true);
  std::pair<Tensor, Tensor> r;
  r.first = f();
  kernels::set_fused_attention(false);
  r.second = f();
  return r;
}
}  // namespace

TEST_CASE("cuda bf16: the fused attention kernel matches the composite and an f64 attention (edge tiles, long rows)") {
  SANF_SKIP_WITHOUT_CUDA();
  NoGradGuard no_grad;
  struct Shape5 {
    int64_t B, N, H, hd;
  };
  // ViT at 224 (N = 197: four query tiles and four key tiles, the last of 5 rows), a partial tile, exactly
  // one tile, one token, the widest heads past 256 keys, hd = 32, and ViT at 384 (N = 577: ten key tiles).
  for (const Shape5 c : {Shape5{2, 197, 3, 64}, Shape5{3, 17, 2, 32}, Shape5{2, 64, 4, 64}, Shape5{2, 1, 2, 64},
                         Shape5{1, 300, 2, 128}, Shape5{2, 50, 6, 32}, Shape5{1, 577, 2, 64}}) {
    INFO("B ", c.B, " N ", c.N, " H ", c.H, " hd ", c.hd);
    REQUIRE(kernels::cuda::attention_bf16_fits(c.N, c.hd));
    const Tensor qkv_cpu = f32(rin({c.B, c.N, 3 * c.H * c.hd}, 80, 2.0));
    const Tensor qkv = cuda(qkv_cpu);
    const double scale = 1.0 / std::sqrt(double(c.hd));
    // The attention of the same bf16 operands in f64: what both roundings of the weights approximate.
    const auto [q, k, v] = split_qkv_bf16(qkv_cpu, c.H, scale);
    const Tensor p = softmax(matmul(to(q, DType::F64), transpose(to(k, DType::F64), -2, -1)), -1);
    const Tensor exact = reshape(transpose(matmul(p, to(v, DType::F64)), 1, 2), {c.B, c.N, c.H * c.hd});
    for (DType out : {DType::F32, DType::BF16}) {
      const auto [fused, composite] = fused_and_composite([&] { return attention_bf16(qkv, c.H, scale, out); });
      CHECK(fused.dtype() == out);
      REQUIRE(fused.shape() == composite.shape());
      // The fused kernel rounds each unnormalised weight to bf16, the composite each normalised one: one
      // rounding of relative 2^-9 at most per weight either way, about 1e-3 (relative L2) from the exact
      // attention (the fused one less: a row's largest weight, exp(0) = 1, is exact), the two within 4e-3
      // of each other. The fused one must be no worse than the composite (within 30%), and close to it
      // elementwise. (The CPU emulation of the kernel gave 5e-4 against the composite's 1.5e-3.)
      const Tensor f = to(to(fused, Device::CPU), DType::F64), m = to(to(composite, Device::CPU), DType::F64);
      const double e_fused = rel_l2(f, exact), e_comp = rel_l2(m, exact), e = rel_l2(f, m);
      MESSAGE(std::string(dtype_name(out)), " out: relative L2 to the f64 attention: fused ", e_fused, ", composite ",
              e_comp, "; fused vs composite ", e);
      CHECK(e_fused <= 1.3 * e_comp + 1e-4);
      CHECK(e < 4e-3);
      expect_close("fused attention", to(fused, DType::F32), to(composite, DType::F32), Tol{3e-2, 3e-3});
    }
  }
}

TEST_CASE("cuda bf16: a bf16 ViT with the fused attention agrees with the composite") {
  SANF_SKIP_WITHOUT_CUDA();
  vit::ViTConfig c;
  c.name = "vit-t";
  c.image_size = 32, c.patch_size = 4, c.dim = 128, c.depth = 2, c.heads = 2;  // N = 65, hd = 64
  Generator g(41);
  REQUIRE(kernels::cuda::attention_bf16_fits(65, 64));  // the fused path really runs
  vit::VisionTransformer m(c, {&g, DType::F32, Device::CUDA});
  m.set_precision(nn::MatmulPrecision::BF16);
  Generator gx(42);
  const Tensor images = cuda(randn({3, 3, 32, 32}, DType::F32, Device::CPU, &gx));
  NoGradGuard no_grad;
  const auto [fused, composite] = fused_and_composite([&] { return m.forward(images); });
  const double e = rel_l2(fused, composite);
  MESSAGE("bf16 ViT, fused vs composite attention: relative L2 ", e);
  CHECK(e < 5e-3);
}

namespace {
// A small bf16 ViT on CUDA against the same model's bf16 forward on the CPU and f32 forward, with
// cuBLASLt's epilogues (kernels/cuda_options.h) switched as asked.
void check_bf16_vit_against_cpu(bool cublaslt) {
  vit::ViTConfig c;
  c.name = "vit-t";
  c.image_size = 32, c.patch_size = 4, c.dim = 64, c.depth = 2, c.heads = 4;
  Generator g1(21), g2(21);
  vit::VisionTransformer on_cpu(c, {&g1}), on_cuda(c, {&g2, DType::F32, Device::CUDA});
  Generator gx(22);
  const Tensor images = randn({4, 3, 32, 32}, DType::F32, Device::CPU, &gx);
  NoGradGuard no_grad;
  const Tensor y32 = on_cpu.forward(images);
  on_cpu.set_precision(nn::MatmulPrecision::BF16);
  on_cuda.set_precision(nn::MatmulPrecision::BF16);
  const Tensor cpu16 = on_cpu.forward(images);
  const long long lt0 = kernels::cublaslt_gemm_count();
  Tensor cuda16;
  {
    const kernels::ScopedSwitch lt(kernels::set_cublaslt, kernels::cublaslt_enabled, cublaslt);
    cuda16 = on_cuda.forward(cuda(images));
  }
  const long long lt_ran = kernels::cublaslt_gemm_count() - lt0;
  if (cublaslt)
    CHECK(lt_ran >= 6);  // qkv, proj, fc2 of both blocks
  else
    CHECK(lt_ran == 0);
  CHECK(cuda16.device() == Device::CUDA);
  CHECK(cuda16.dtype() == DType::F32);
  const double e_dev = rel_l2(cuda16, cpu16), e_bf16 = rel_l2(cpu16, y32), e_cuda = rel_l2(cuda16, y32);
  MESSAGE("bf16 ViT: cuda vs cpu ", e_dev, "; cpu bf16 vs f32 ", e_bf16, "; cuda bf16 vs f32 ", e_cuda);
  CHECK(e_dev < 0.25 * e_bf16 + 1e-6);  // the devices agree far better than bf16 agrees with f32
  CHECK(e_cuda > 1e-4);                 // it really is bf16 ...
  CHECK(e_cuda < 5e-2);                 // ... and not broken
}
}  // namespace

TEST_CASE("cuda bf16: a ViT in bf16 on CUDA agrees with the CPU's bf16 and is within bf16 of f32") {
  SANF_SKIP_WITHOUT_CUDA();
  check_bf16_vit_against_cpu(false);
}

TEST_CASE("cuda bf16: a ViT in bf16 with cuBLASLt's epilogues agrees with the CPU's bf16 and ran them") {
  SANF_SKIP_WITHOUT_CUDA();
  check_bf16_vit_against_cpu(true);
}

TEST_CASE("cuda bf16: TF32 on and off leaves the bf16 path alone, and an f32 ViT under TF32 is within 1e-2") {
  SANF_SKIP_WITHOUT_CUDA();
  vit::ViTConfig c;
  c.name = "vit-t";
  c.image_size = 32, c.patch_size = 4, c.dim = 64, c.depth = 2, c.heads = 4;
  Generator g1(31), g2(31);
  vit::VisionTransformer on_cpu(c, {&g1}), on_cuda(c, {&g2, DType::F32, Device::CUDA});
  Generator gx(32);
  const Tensor images = randn({2, 3, 32, 32}, DType::F32, Device::CPU, &gx);
  NoGradGuard no_grad;
  const Tensor y32 = on_cpu.forward(images);
  kernels::set_tf32(true);
  const Tensor tf32 = on_cuda.forward(cuda(images));
  on_cuda.set_precision(nn::MatmulPrecision::BF16);
  const Tensor bf16_tf32_on = on_cuda.forward(cuda(images));
  kernels::set_tf32(false);
  const Tensor bf16_tf32_off = on_cuda.forward(cuda(images));
  CHECK(rel_l2(tf32, y32) < 1e-2);
  // The bf16 GEMMs take bf16 operands either way; cuBLAS may still pick another kernel under the TF32 math
  // mode (another f32 summation order), and a last-bit difference can flip a later bf16 rounding of an
  // activation. So: the same computation up to that, far inside bf16's own error against f32 (~4e-3).
  const double e_mode = rel_l2(bf16_tf32_on, bf16_tf32_off), e_bf16 = rel_l2(bf16_tf32_off, y32);
  MESSAGE("bf16 ViT, TF32 on vs off: ", e_mode, "; bf16 vs f32: ", e_bf16);
  CHECK(e_mode < 0.1 * e_bf16 + 1e-7);
}
