// tests/autograd/test_matmul_bf16.cpp: the bf16 inference ops linear_bf16, matmul_bf16 and softmax_bf16 on
// the CPU (softmax_bf16, and the ops' bf16 results: to(f32 result, BF16) bit for bit).
//
// Their definition is "round the GEMM operands to bf16, then multiply in f32": each is checked to equal,
// bit for bit, the f32 op applied to operands rounded explicitly with to(to(x, BF16), F32); against the
// unrounded f32 op its error is of bf16's size (relative ~1e-3..1e-2, never 0); and both refuse to run
// where autograd would record, since they have no backward.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "autograd/fast.h"
#include "autograd/ops.h"
#include "kernels/fast/attention.h"
#include "kernels/cuda_options.h"
#include "tests/testing/gradcheck.h"

using namespace sanf;
using namespace sanf::testing;

namespace {
// An f32 tensor whose values are x's rounded to the nearest bf16.
Tensor round_bf16(const Tensor& x) { return to(to(x, DType::BF16), DType::F32); }
Tensor f32(const Tensor& x) { return to(x, DType::F32); }

// Bitwise equality of two f32 tensors of one shape; reports the first difference.
void check_same_values(const char* what, const Tensor& got, const Tensor& want) {
  INFO(what);
  REQUIRE(got.shape() == want.shape());
  CHECK(got.dtype() == DType::F32);
  const std::vector<double> g = got.to_vector(), w = want.to_vector();
  size_t bad = 0;
  for (size_t i = 0; i < g.size(); ++i)
    if (g[i] != w[i] && bad++ == 0) FAIL_CHECK("element ", i, ": ", g[i], " vs ", w[i]);
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("bf16 ops: linear_bf16 is linear on bf16-rounded operands, bit for bit") {
  NoGradGuard no_grad;
  const Tensor x = f32(rnd({3, 5, 40}, 1)), w = f32(rnd({17, 40}, 2, 0.2)), b = f32(rnd({17}, 3));
  const Tensor want = linear(round_bf16(x), round_bf16(w), b);
  check_same_values("f32 weight", linear_bf16(x, w, b), want);
  check_same_values("bf16 weight (converted once)", linear_bf16(x, to(w, DType::BF16), b), want);
  check_same_values("bf16 x", linear_bf16(to(x, DType::BF16), w, b), want);
  check_same_values("no bias", linear_bf16(x, w), linear(round_bf16(x), round_bf16(w)));
  check_same_values("fused GELU", linear_bf16(x, w, b, true), linear_gelu(round_bf16(x), round_bf16(w), b));
  // A non-contiguous x (a transposed view) is rounded through a strided copy: same values.
  const Tensor xt = f32(rnd({40, 6}, 4));
  check_same_values("transposed x", linear_bf16(transpose(xt, 0, 1), w, b),
                    linear(round_bf16(transpose(xt, 0, 1)), round_bf16(w), b));
  // 1-D x, and empty batches.
  const Tensor x1 = select(select(x, 0, 0), 0, 1);  // (40)
  check_same_values("1-D x", linear_bf16(x1, w, b), linear(round_bf16(x1), round_bf16(w), b));
  CHECK(linear_bf16(f32(rnd({0, 40}, 5)), w, b).shape() == Shape{0, 17});
}

TEST_CASE("bf16 ops: linear_bf16 with a residual is add(residual, linear_bf16), bit for bit") {
  NoGradGuard no_grad;
  const Tensor x = f32(rnd({3, 5, 40}, 11)), w = f32(rnd({17, 40}, 12, 0.2)), b = f32(rnd({17}, 13));
  const Tensor r = f32(rnd({3, 5, 17}, 14));
  check_same_values("bias", linear_bf16(x, w, b, false, DType::F32, r), add(r, linear_bf16(x, w, b)));
  check_same_values("no bias", linear_bf16(x, w, Tensor(), false, DType::F32, r), add(r, linear_bf16(x, w)));
  check_same_values("GELU, then the residual", linear_bf16(x, w, b, true, DType::F32, r),
                    add(r, linear_bf16(x, w, b, true)));
  // A bf16 result is the f32 sum rounded; a transposed-view residual is read in its own layout.
  CHECK(linear_bf16(x, w, b, false, DType::BF16, r).to_vector() ==
        to(add(r, linear_bf16(x, w, b)), DType::BF16).to_vector());
  const Tensor rt = transpose(f32(rnd({17, 5}, 15)), 0, 1);  // (5, 17), not contiguous
  const Tensor x2 = f32(rnd({5, 40}, 16));
  check_same_values("strided residual", linear_bf16(x2, w, b, false, DType::F32, rt), add(rt, linear_bf16(x2, w, b)));
  // The residual must be the result's shape, f32, on its device.
  CHECK_THROWS_WITH_AS(linear_bf16(x, w, b, false, DType::F32, f32(rnd({3, 5, 16}, 17))),
                       doctest::Contains("[linear_bf16] residual must be f32 (3, 5, 17)"), Error);
  CHECK_THROWS_WITH_AS(linear_bf16(x, w, b, false, DType::F32, to(r, DType::F64)),
                       doctest::Contains("[linear_bf16] residual must be f32"), Error);
}

TEST_CASE("bf16 ops: matmul_bf16 is matmul on bf16-rounded operands, bit for bit") {
  NoGradGuard no_grad;
  const Tensor a = f32(rnd({2, 3, 7, 24}, 10)), bm = f32(rnd({2, 3, 24, 9}, 11));
  check_same_values("batched", matmul_bf16(a, bm), matmul(round_bf16(a), round_bf16(bm)));
  // Attention's q k^T: the right operand a transposed view, read transposed after its bf16 copy.
  const Tensor k = f32(rnd({2, 3, 9, 24}, 12));
  check_same_values("transposed right operand", matmul_bf16(a, transpose(k, -2, -1)),
                    matmul(round_bf16(a), transpose(round_bf16(k), -2, -1)));
  // Broadcast batch dims: a shared right matrix (folded into one GEMM), a shared left one, size-1 dims.
  const Tensor w = f32(rnd({24, 5}, 13));
  check_same_values("shared right", matmul_bf16(a, w), matmul(round_bf16(a), round_bf16(w)));
  const Tensor a2 = f32(rnd({7, 24}, 14));
  check_same_values("shared left", matmul_bf16(a2, bm), matmul(round_bf16(a2), round_bf16(bm)));
  const Tensor b1 = f32(rnd({1, 3, 24, 9}, 15));
  check_same_values("broadcast size-1 batch dim", matmul_bf16(a, b1), matmul(round_bf16(a), round_bf16(b1)));
  // K == 0: the empty sum.
  check_same_values("K = 0", matmul_bf16(f32(rnd({4, 0}, 16)), f32(rnd({0, 3}, 17))), zeros({4, 3}));
}

TEST_CASE("bf16 ops: the error against f32 is bf16 rounding, neither 0 nor large") {
  NoGradGuard no_grad;
  const Tensor x = f32(rnd({64, 256}, 20)), w = f32(rnd({96, 256}, 21, 0.05)), b = f32(rnd({96}, 22, 0.1));
  const double e_lin = rel_l2(linear_bf16(x, w, b), linear(x, w, b));
  // bf16 keeps 8 significant bits: each operand is off by up to 2^-9 relative, ~2^-9/sqrt(3) on average,
  // and a dot product of independent errors lands near sqrt(2) of that: ~3e-3.
  MESSAGE("linear_bf16 relative L2 error vs f32: ", e_lin);
  CHECK(e_lin > 5e-4);
  CHECK(e_lin < 1e-2);
  const Tensor a = f32(rnd({4, 50, 64}, 23)), c = f32(rnd({4, 64, 50}, 24));
  const double e_mm = rel_l2(matmul_bf16(a, c), matmul(a, c));
  MESSAGE("matmul_bf16 relative L2 error vs f32: ", e_mm);
  CHECK(e_mm > 5e-4);
  CHECK(e_mm < 1e-2);
}

TEST_CASE("bf16 ops: inference only, and clear errors") {
  const Tensor x = f32(rnd({3, 8}, 30)), w = f32(rnd({4, 8}, 31)), b = f32(rnd({4}, 32));
  Tensor wg = clone(w);
  wg.set_requires_grad(true);
  // With grad mode on and an input requiring grad: refused, naming the op.
  CHECK_THROWS_WITH_AS(linear_bf16(x, wg, b), doctest::Contains("[linear_bf16] is inference-only"), Error);
  CHECK_THROWS_WITH_AS(matmul_bf16(x, transpose(wg, 0, 1)), doctest::Contains("[matmul_bf16] is inference-only"),
                       Error);
  // Grad mode on but nothing requiring grad, or under NoGradGuard: runs, records nothing.
  CHECK(linear_bf16(x, w, b).grad_fn() == nullptr);
  {
    NoGradGuard no_grad;
    const Tensor y = linear_bf16(x, wg, b);
    CHECK(y.grad_fn() == nullptr);
    CHECK(!y.requires_grad());
  }
  NoGradGuard no_grad;
  CHECK_THROWS_WITH_AS(linear_bf16(to(x, DType::F64), w, b), doctest::Contains("[linear_bf16] x must be f32"), Error);
  CHECK_THROWS_WITH_AS(linear_bf16(x, f32(rnd({4, 7}, 33)), b),
                       doctest::Contains("[linear_bf16] x (3, 8) and weight (4, 7) differ in the input width"), Error);
  CHECK_THROWS_WITH_AS(linear_bf16(x, w, to(b, DType::BF16)), doctest::Contains("[linear_bf16] bias must be f32"),
                       Error);
  CHECK_THROWS_WITH_AS(matmul_bf16(x, w), doctest::Contains("[matmul_bf16] inner dims differ: (3, 8) x (4, 8)"), Error);
  CHECK_THROWS_WITH_AS(matmul_bf16(f32(rnd({2, 3, 8}, 34)), f32(rnd({3, 8, 2}, 35))),
                       doctest::Contains("[matmul_bf16] batch dims do not broadcast"), Error);
}

TEST_CASE("bf16 ops: softmax_bf16 is the f32 softmax rounded to bf16, bit for bit (any dim, many rows)") {
  NoGradGuard no_grad;
  // Attention-sized rows spread over threads, one long row, a middle dim (a strided block), one column.
  const std::vector<std::pair<Shape, int>> cases = {
      {{2, 3, 50, 50}, -1}, {{1, 4000}, -1}, {{5, 7, 9}, 1}, {{6, 1}, -1}, {{0, 5}, -1}};
  uint64_t seed = 40;
  for (const auto& [shape, dim] : cases) {
    INFO("shape ", shape_str(shape), " dim ", dim);
    const Tensor x = f32(rnd(shape, seed++)) * 4.0;
    const Tensor y = softmax_bf16(x, dim);
    CHECK(y.dtype() == DType::BF16);
    CHECK(y.shape() == shape);
    const std::vector<double> got = y.to_vector(), want = to(softmax(x, dim), DType::BF16).to_vector();
    REQUIRE(got.size() == want.size());
    size_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i) bad += got[i] != want[i];
    CHECK(bad == 0);
  }
}

TEST_CASE("bf16 ops: softmax_bf16 is inference only, f32 only") {
  Tensor xg = f32(rnd({3, 8}, 50));
  xg.set_requires_grad(true);
  CHECK_THROWS_WITH_AS(softmax_bf16(xg, -1), doctest::Contains("[softmax_bf16] is inference-only"), Error);
  NoGradGuard no_grad;
  CHECK(softmax_bf16(xg, -1).grad_fn() == nullptr);
  CHECK_THROWS_WITH_AS(softmax_bf16(to(xg, DType::F64), -1), doctest::Contains("[softmax_bf16] needs f32"), Error);
  CHECK_THROWS_AS(softmax_bf16(xg, 2), Error);
}

TEST_CASE("bf16 ops: layer_norm_bf16 is the f32 layer norm rounded to bf16, bit for bit") {
  NoGradGuard no_grad;
  for (const Shape& shape : {Shape{3, 5, 40}, Shape{7, 1024}, Shape{1, 1}, Shape{0, 8}}) {
    INFO("shape ", shape_str(shape));
    const int64_t D = shape.back();
    const Tensor x = mul(f32(rnd(shape, 60)), 3.0), w = f32(rnd({D}, 61)), b = f32(rnd({D}, 62));
    const Tensor y = layer_norm_bf16(x, w, b, 1e-6);
    CHECK(y.dtype() == DType::BF16);
    CHECK(y.shape() == shape);
    CHECK(y.to_vector() == to(layer_norm(x, w, b, 1e-6), DType::BF16).to_vector());
  }
  // A strided x (a transposed view) is read through a copy: the same values.
  const Tensor xt = transpose(f32(rnd({16, 6}, 63)), 0, 1), w = f32(rnd({16}, 64)), b = f32(rnd({16}, 65));
  CHECK(layer_norm_bf16(xt, w, b, 1e-5).to_vector() == to(layer_norm(xt, w, b, 1e-5), DType::BF16).to_vector());
  CHECK_THROWS_WITH_AS(layer_norm_bf16(xt, f32(rnd({15}, 66)), b, 1e-5),
                       doctest::Contains("[layer_norm_bf16] weight must be (16,) for x (6, 16), got (15,)"), Error);
  CHECK_THROWS_WITH_AS(layer_norm_bf16(to(xt, DType::F64), w, b, 1e-5),
                       doctest::Contains("[layer_norm_bf16] needs f32"), Error);
}

TEST_CASE("bf16 ops: layer_norm_bf16 is inference only") {
  Tensor w = f32(rnd({8}, 67));
  w.set_requires_grad(true);
  CHECK_THROWS_WITH_AS(layer_norm_bf16(f32(rnd({3, 8}, 68)), w, f32(rnd({8}, 69)), 1e-6),
                       doctest::Contains("[layer_norm_bf16] is inference-only"), Error);
}

TEST_CASE("bf16 ops: a bf16 result (out = BF16) is the f32 result rounded, bit for bit") {
  NoGradGuard no_grad;
  auto same = [](const char* what, const Tensor& got, const Tensor& f32_result) {
    INFO(what);
    CHECK(got.dtype() == DType::BF16);
    REQUIRE(got.shape() == f32_result.shape());
    CHECK(got.to_vector() == to(f32_result, DType::BF16).to_vector());
  };
  const Tensor x = f32(rnd({2, 7, 24}, 60)), w = f32(rnd({13, 24}, 61)), b = f32(rnd({13}, 62));
  for (bool gelu : {false, true}) {
    same("linear_bf16", linear_bf16(x, w, b, gelu, DType::BF16), linear_bf16(x, w, b, gelu));
    same("linear_bf16 no bias", linear_bf16(x, w, Tensor(), gelu, DType::BF16), linear_bf16(x, w, Tensor(), gelu));
  }
  const Tensor a = f32(rnd({3, 4, 9, 16}, 63)), v = f32(rnd({3, 4, 16, 5}, 64)), shared = f32(rnd({16, 5}, 65));
  same("matmul_bf16 batched", matmul_bf16(a, v, DType::BF16), matmul_bf16(a, v));
  same("matmul_bf16 broadcast b", matmul_bf16(a, shared, DType::BF16), matmul_bf16(a, shared));
  same("matmul_bf16 transposed b", matmul_bf16(a, transpose(a, -2, -1), DType::BF16),
       matmul_bf16(a, transpose(a, -2, -1)));
  same("matmul_bf16 K = 0", matmul_bf16(f32(rnd({2, 0}, 66)), f32(rnd({0, 3}, 67)), DType::BF16),
       matmul_bf16(f32(rnd({2, 0}, 66)), f32(rnd({0, 3}, 67))));
  CHECK(matmul_bf16(f32(rnd({0, 4}, 68)), f32(rnd({4, 3}, 69)), DType::BF16).dtype() == DType::BF16);
  CHECK_THROWS_WITH_AS(linear_bf16(x, w, b, false, DType::F64),
                       doctest::Contains("[linear_bf16] the result is f32 or bf16, not f64"), Error);
}

TEST_CASE("bf16 ops: attention_bf16 (the composite on the CPU): shapes, dtypes, errors, the fused switch") {
  NoGradGuard no_grad;
  const int64_t B = 2, N = 5, H = 3, hd = 4, D = H * hd;
  const Tensor qkv = f32(rnd({B, N, 3 * D}, 70));
  for (DType out : {DType::F32, DType::BF16}) {
    const Tensor o = attention_bf16(qkv, H, 0.5, out);
    CHECK(o.shape() == Shape{B, N, D});
    CHECK(o.dtype() == out);
  }
  // Each query's output is a weighted mean of the values: with all values equal to c it is c, up to the
  // bf16 rounding of the N weights (each within 2^-9 relative, so their sum within N 2^-9 of 1).
  const Tensor same_v = concat({f32(rnd({B, N, 2 * D}, 71)), full({B, N, D}, 0.75)}, 2);
  for (double o : attention_bf16(same_v, H, 0.5).to_vector()) CHECK(std::fabs(o - 0.75) <= 0.75 * N * 0x1p-9);
  CHECK_THROWS_WITH_AS(attention_bf16(f32(rnd({B, N, 3 * D + 1}, 72)), H, 0.5),
                       doctest::Contains("[attention_bf16] qkv's width 37 is not 3 x 3 heads"), Error);
  CHECK_THROWS_WITH_AS(attention_bf16(to(qkv, DType::F64), H, 0.5), doctest::Contains("must be an f32"), Error);
  CHECK_THROWS_AS(attention_bf16(qkv, H, 0.5, DType::F64), Error);
  // The kernel's shape rule, and the switch (it reads back; on the CPU it changes nothing).
  CHECK(kernels::attention_bf16_supported(197, 64));
  CHECK(kernels::attention_bf16_supported(577, 128));  // keys are streamed: no limit of a tile
  CHECK(!kernels::attention_bf16_supported(0, 64));
  CHECK(!kernels::attention_bf16_supported(197, 48));
  const kernels::ScopedSwitch fused(kernels::set_fused_attention, kernels::fused_attention_enabled, true);
  CHECK(kernels::fused_attention_enabled());
  CHECK(attention_bf16(qkv, H, 0.5).to_vector() == attention_bf16(qkv, H, 0.5).to_vector());
}

TEST_CASE("bf16 ops: split_qkv_bf16 is the permuted, scaled and rounded q, k and v, bit for bit") {
  NoGradGuard no_grad;
  // ViT-like and odd shapes; values spread over many binades with exact bf16 ties, zeros of both signs,
  // infinities and a NaN among them.
  for (const auto& [B, N, H, hd] : std::vector<std::array<int64_t, 4>>{{2, 5, 3, 4}, {1, 197, 2, 64}, {3, 1, 5, 3}}) {
    INFO("B ", B, " N ", N, " H ", H, " hd ", hd);
    const int64_t D = H * hd;
    Tensor qkv = f32(rnd({B, N, 3 * D}, 80 + uint64_t(hd))) * 100.0;
    float* p = qkv.data<float>();
    p[0] = -0.0f, p[1] = 0.0f, p[2] = INFINITY, p[3 * D - 1] = -INFINITY, p[D] = NAN;
    p[D + 1] = 1.0f + 0x1p-8f;   // exactly halfway between two bf16: rounds to even (1.0)
    p[2 * D] = 1.0f + 0x3p-8f;   // halfway, rounds up to even (1 + 2^-6)
    const double scale = 1.0 / std::sqrt(double(hd));
    const auto [q, k, v] = split_qkv_bf16(qkv, H, scale);
    for (const Tensor& t : {q, k, v}) {
      CHECK(t.dtype() == DType::BF16);
      CHECK(t.shape() == Shape{B, H, N, hd});
      CHECK(t.is_contiguous());
    }
    const Tensor t = permute(reshape(qkv, {B, N, 3, H, hd}), {2, 0, 3, 1, 4});
    const std::vector<Tensor> want = {to(mul(select(t, 0, 0), scale), DType::BF16), to(select(t, 0, 1), DType::BF16),
                                      to(select(t, 0, 2), DType::BF16)};
    const Tensor got[3] = {q, k, v};
    for (int w = 0; w < 3; ++w) {
      INFO("output ", w);
      // Compared as bit patterns (NaN included).
      const Tensor g = contiguous(got[w]), e = contiguous(want[size_t(w)]);
      CHECK(std::memcmp(g.data<bf16>(), e.data<bf16>(), size_t(g.numel()) * sizeof(bf16)) == 0);
    }
  }
  // The attention built on it is the one built on the strided ops, bit for bit.
  const int64_t B = 2, N = 7, H = 3, hd = 8, D = H * hd;
  const Tensor qkv = f32(rnd({B, N, 3 * D}, 90)) * 3.0;
  const Tensor t = permute(reshape(qkv, {B, N, 3, H, hd}), {2, 0, 3, 1, 4});
  const Tensor p = softmax_bf16(matmul_bf16(mul(select(t, 0, 0), 0.3), transpose(select(t, 0, 1), -2, -1)), -1);
  const Tensor o = reshape(transpose(matmul_bf16(p, select(t, 0, 2)), 1, 2), {B, N, D});
  {
    const kernels::ScopedSwitch composite(kernels::set_fused_attention, kernels::fused_attention_enabled, false);
    check_same_values("attention_bf16 vs the strided composite", attention_bf16(qkv, H, 0.3), o);
  }
  // Errors: the width, the dtype, autograd.
  CHECK_THROWS_WITH_AS(split_qkv_bf16(f32(rnd({2, 3, 10}, 91)), 3, 1.0),
                       doctest::Contains("[split_qkv_bf16] qkv's width 10 is not 3 x 3 heads"), Error);
  CHECK_THROWS_WITH_AS(split_qkv_bf16(rnd({2, 3, 9}, 92), 3, 1.0), doctest::Contains("must be an f32"), Error);
}
