// tests/autograd/test_gradcheck_matmul.cpp: finite-difference checks of matmul, linear and the fused
// linear_gelu (2-D, batched, broadcast, 1-D, non-contiguous views that take the transposed and the copying
// paths), their values against plain loops and (linear_gelu) against the unfused gelu(linear(...)), and
// their error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "autograd/ops.h"
#include "tests/testing/gradcheck.h"

using namespace sanf;
using namespace sanf::testing;
using V = std::vector<Tensor>;

namespace {
Tensor mm(const V& x) { return matmul(x[0], x[1]); }

// C[b][i][j] = sum_k A[b][i][k] B[b][k][j] for contiguous row-major (batch, M, K) and (batch, K, N) data,
// with a batch stride of 0 where an operand is shared.
std::vector<double> naive_bmm(const std::vector<double>& A, const std::vector<double>& B, int64_t batch, int64_t M,
                              int64_t N, int64_t K, bool a_shared, bool b_shared) {
  std::vector<double> C(size_t(batch * M * N), 0.0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k)
          s += A[size_t((a_shared ? 0 : b * M * K) + i * K + k)] * B[size_t((b_shared ? 0 : b * K * N) + k * N + j)];
        C[size_t(b * M * N + i * N + j)] = s;
      }
  return C;
}
}  // namespace

TEST_CASE("gradcheck: matmul 2-D and batched") {
  gradcheck("matmul 2-D", mm, {rnd({3, 4}, 1), rnd({4, 5}, 2)});
  gradcheck("matmul 3-D", mm, {rnd({2, 3, 4}, 3), rnd({2, 4, 5}, 4)});
  gradcheck("matmul 4-D", mm, {rnd({2, 3, 2, 4}, 5), rnd({2, 3, 4, 3}, 6)});
  // K == 1 (an outer product) and M == N == 1 (a dot product kept 2-D).
  gradcheck("matmul outer", mm, {rnd({3, 1}, 7), rnd({1, 4}, 8)});
  gradcheck("matmul (1, K) (K, 1)", mm, {rnd({1, 5}, 9), rnd({5, 1}, 10)});
}

TEST_CASE("gradcheck: matmul with broadcast batch dims") {
  gradcheck("(2,1,3,4) @ (5,4,2)", mm, {rnd({2, 1, 3, 4}, 11), rnd({5, 4, 2}, 12)});
  // One B for the whole batch (forward folds the batch into M, dB folds it into K) and one A.
  gradcheck("(2,3,4) @ (4,5)", mm, {rnd({2, 3, 4}, 13), rnd({4, 5}, 14)});
  gradcheck("(2,2,3,4) @ (1,4,5)", mm, {rnd({2, 2, 3, 4}, 15), rnd({1, 4, 5}, 16)});
  gradcheck("(3,4) @ (2,4,5)", mm, {rnd({3, 4}, 17), rnd({2, 4, 5}, 18)});
  gradcheck("(1,3,4) @ (2,1,4,2)", mm, {rnd({1, 3, 4}, 19), rnd({2, 1, 4, 2}, 20)});
}

TEST_CASE("gradcheck: matmul with 1-D operands") {
  gradcheck("vec . vec", mm, {rnd({4}, 21), rnd({4}, 22)});
  gradcheck("vec @ mat", mm, {rnd({4}, 23), rnd({4, 3}, 24)});
  gradcheck("mat @ vec", mm, {rnd({3, 4}, 25), rnd({4}, 26)});
  gradcheck("vec @ batched", mm, {rnd({4}, 27), rnd({2, 4, 3}, 28)});
  gradcheck("batched @ vec", mm, {rnd({2, 3, 4}, 29), rnd({4}, 30)});
  Tensor d = matmul(rnd({4}, 31), rnd({4}, 32));
  CHECK(d.dim() == 0);
  CHECK(matmul(rnd({4}, 33), rnd({2, 4, 3}, 34)).shape() == Shape{2, 3});
}

TEST_CASE("gradcheck: matmul on non-contiguous inputs") {
  // Transposed views: read in place with the trans flag.
  gradcheck("A^T @ B", [](const V& x) { return matmul(transpose(x[0], 0, 1), x[1]); },
            {rnd({4, 3}, 41), rnd({4, 5}, 42)});
  gradcheck("A @ B^T", [](const V& x) { return matmul(x[0], transpose(x[1], 0, 1)); },
            {rnd({3, 4}, 43), rnd({5, 4}, 44)});
  gradcheck("batched q @ k^T", [](const V& x) { return matmul(x[0], transpose(x[1], -1, -2)); },
            {rnd({2, 3, 4}, 45), rnd({2, 5, 4}, 46)});
  gradcheck("batched A^T @ B^T", [](const V& x) { return matmul(transpose(x[0], 1, 2), transpose(x[1], 1, 2)); },
            {rnd({2, 4, 3}, 47), rnd({2, 5, 4}, 48)});
  // Narrowed views: a row stride larger than the row (lda > K), and an offset start.
  gradcheck("narrow", [](const V& x) { return matmul(narrow(x[0], 1, 1, 4), narrow(x[1], 0, 2, 4)); },
            {rnd({3, 6}, 49), rnd({7, 5}, 50)});
  // Permuted batch dims (batch stride smaller than the matrix), and a layout with no unit stride (copied).
  gradcheck("permuted batch",
            [](const V& x) {
              return matmul(permute(x[0], {1, 0, 2}), x[1]);
            },
            {rnd({3, 2, 4}, 51), rnd({2, 4, 5}, 52)});
  gradcheck("no unit stride", [](const V& x) { return matmul(transpose(x[0], 0, 2), x[1]); },
            {rnd({4, 3, 2}, 53), rnd({2, 4, 5}, 54)});
  // An expanded operand with stride-0 rows (copied) and a batch that is not one stride apart (copied).
  gradcheck("expanded rows",
            [](const V& x) {
              return matmul(expand(x[0], {3, 4}), x[1]);
            },
            {rnd({1, 4}, 55), rnd({4, 2}, 56)});
  gradcheck("batch not one stride", [](const V& x) { return matmul(narrow(x[0], 1, 0, 2), x[1]); },
            {rnd({2, 3, 3, 4}, 57), rnd({4, 2}, 58)});
}

TEST_CASE("gradcheck: linear") {
  Tensor W = rnd({3, 4}, 61), b = rnd({3}, 62);
  auto lin = [](const V& x) { return linear(x[0], x[1], x[2]); };
  auto lin_nb = [](const V& x) { return linear(x[0], x[1]); };
  gradcheck("linear 2-D", lin, {rnd({5, 4}, 63), W, b});
  gradcheck("linear 3-D", lin, {rnd({2, 5, 4}, 64), W, b});
  gradcheck("linear 1-D", lin, {rnd({4}, 65), W, b});
  gradcheck("linear 2-D no bias", lin_nb, {rnd({5, 4}, 66), W});
  gradcheck("linear 3-D no bias", lin_nb, {rnd({2, 5, 4}, 67), W});
  // x as a transposed view (rows read transposed), W as a transposed view (W^T read in place), and a 3-D x
  // whose leading dims are not one stride apart (copied).
  gradcheck("linear x^T", [](const V& x) { return linear(transpose(x[0], 0, 1), x[1], x[2]); },
            {rnd({4, 5}, 68), W, b});
  gradcheck("linear W^T", [](const V& x) { return linear(x[0], transpose(x[1], 0, 1), x[2]); },
            {rnd({2, 5, 4}, 69), rnd({4, 3}, 70), b});
  gradcheck("linear permuted x",
            [](const V& x) {
              return linear(permute(x[0], {1, 0, 2}), x[1], x[2]);
            },
            {rnd({5, 2, 4}, 71), W, b});
}

TEST_CASE("gradcheck: linear_gelu (fused)") {
  Tensor W = rnd({3, 4}, 161), b = rnd({3}, 162);
  auto lg = [](const V& x) { return linear_gelu(x[0], x[1], x[2]); };
  auto lg_nb = [](const V& x) { return linear_gelu(x[0], x[1]); };
  // Inputs scaled so the pre-activations spread over the GELU's curved part, [-4, 4].
  gradcheck("linear_gelu 2-D", lg, {rnd({5, 4}, 163, 1.5), W, b});
  gradcheck("linear_gelu 3-D", lg, {rnd({2, 5, 4}, 164, 1.5), W, b});
  gradcheck("linear_gelu 1-D", lg, {rnd({4}, 165, 1.5), W, b});
  gradcheck("linear_gelu no bias", lg_nb, {rnd({2, 5, 4}, 166, 1.5), W});
  gradcheck("linear_gelu x^T", [](const V& x) { return linear_gelu(transpose(x[0], 0, 1), x[1], x[2]); },
            {rnd({4, 5}, 167, 1.5), W, b});
  gradcheck("linear_gelu W^T", [](const V& x) { return linear_gelu(x[0], transpose(x[1], 0, 1), x[2]); },
            {rnd({2, 5, 4}, 168, 1.5), rnd({4, 3}, 169), b});
  // Only the bias needs a gradient, then only x: the closure computes what is asked.
  Tensor x = rnd({6, 4}, 170, 1.5);
  gradcheck("linear_gelu bias only", [x, W](const V& v) { return linear_gelu(x, W, v[0]); }, {b});
  gradcheck("linear_gelu x only", [W, b](const V& v) { return linear_gelu(v[0], W, b); }, {x});
}

TEST_CASE("linear_gelu: equals gelu(linear(...)), fused (no grad) and through autograd, f32 and f64") {
  // 300 x 70 -> 90: a threaded GEMM with edge tiles; K = 270 crosses the GEMM's K block (the bias joins the
  // first block, the GELU follows the last).
  for (int64_t K : {int64_t(70), int64_t(270)})
    for (DType dt : {DType::F32, DType::F64}) {
      const double tol = dt == DType::F32 ? 2e-5 : 1e-12;
      Tensor x = to(rnd({3, 100, K}, 181, 2.0 / std::sqrt(double(K))), dt);
      Tensor W = to(rnd({90, K}, 182), dt), b = to(rnd({90}, 183), dt);
      Tensor want = gelu(linear(x, W, b));
      {
        NoGradGuard no_grad;  // the GEMM applies the GELU as it writes
        SANF_CHECK_CLOSE(linear_gelu(x, W, b), want, tol, tol);
        SANF_CHECK_CLOSE(linear_gelu(x, W), gelu(linear(x, W)), tol, tol);
      }
      // With autograd: the pre-activation is kept, values and every gradient match the unfused ops.
      Tensor w = to(rnd({3, 100, 90}, 184), dt);
      auto grads = [&](bool fused) {
        Tensor xg = detach(x).set_requires_grad(true), Wg = detach(W).set_requires_grad(true),
               bg = detach(b).set_requires_grad(true);
        Tensor y = fused ? linear_gelu(xg, Wg, bg) : gelu(linear(xg, Wg, bg));
        backward(sum(mul(y, w)));
        return std::vector<Tensor>{y, xg.grad(), Wg.grad(), bg.grad()};
      };
      std::vector<Tensor> f = grads(true), u = grads(false);
      for (size_t i = 0; i < f.size(); ++i) {
        INFO("K=", K, " ", dtype_name(dt), " tensor ", i);
        SANF_CHECK_CLOSE(f[i], u[i], tol * 10, tol * 10);
      }
    }
  CHECK_THROWS_WITH_AS(linear_gelu(zeros({8, 64}), zeros({10, 65})),
                       doctest::Contains("[linear_gelu] x (8, 64) and weight (10, 65) differ in the input width"),
                       Error);
}

TEST_CASE("matmul and linear: values against plain loops, threaded sizes, f32 and f64") {
  const int64_t batch = 4, M = 50, K = 70, N = 60;
  for (DType dt : {DType::F32, DType::F64}) {
    const double tol = dt == DType::F32 ? 1e-4 : 1e-12;
    Tensor A = to(rnd({batch, M, K}, 81), dt), B = to(rnd({K, N}, 82), dt), Bb = to(rnd({batch, K, N}, 83), dt);
    std::vector<double> a = A.to_vector(), b = B.to_vector(), bb = Bb.to_vector();
    SANF_CHECK_CLOSE(matmul(A, B), Tensor::from_vector(naive_bmm(a, b, batch, M, N, K, false, true), {batch, M, N}, dt),
                     tol, tol);
    SANF_CHECK_CLOSE(matmul(A, Bb),
                     Tensor::from_vector(naive_bmm(a, bb, batch, M, N, K, false, false), {batch, M, N}, dt), tol, tol);
    // linear(x, W, bias) = x W^T + bias with W = B^T stored (N, K).
    Tensor Wt = contiguous(transpose(B, 0, 1)), bias = to(rnd({N}, 84), dt);
    std::vector<double> want = naive_bmm(a, b, batch, M, N, K, false, true), bv = bias.to_vector();
    for (size_t i = 0; i < want.size(); ++i) want[i] += bv[i % size_t(N)];
    SANF_CHECK_CLOSE(linear(A, Wt, bias), Tensor::from_vector(want, {batch, M, N}, dt), tol, tol);
  }
  // Empty inner dim: zeros (plus the bias for linear).
  CHECK(matmul(zeros({2, 0}), zeros({0, 3})).to_vector() == std::vector<double>(6, 0.0));
  CHECK(linear(zeros({2, 0}), zeros({3, 0}), ones({3})).to_vector() == std::vector<double>(6, 1.0));
}

TEST_CASE("gradcheck: matmul_reference, the textbook form") {
  gradcheck("matmul_reference", [](const V& x) { return matmul_reference(x[0], x[1]); },
            {rnd({3, 4}, 91), rnd({4, 5}, 92)});
  gradcheck("matmul_reference of transposed views",
            [](const V& x) { return matmul_reference(transpose(x[0], 0, 1), transpose(x[1], 0, 1)); },
            {rnd({4, 3}, 93), rnd({5, 4}, 94)});
}

TEST_CASE("matmul_reference: same values and gradients as matmul, on the layouts matmul reads in place") {
  struct Case {
    const char* name;
    std::function<Tensor(const Tensor&)> fa, fb;
    Shape sa, sb;
  };
  auto id = [](const Tensor& t) { return t; };
  auto tr = [](const Tensor& t) { return transpose(t, 0, 1); };
  auto nr = [](const Tensor& t) { return narrow(t, 1, 1, t.size(1) - 2); };
  const std::vector<Case> cases = {{"plain", id, id, {37, 29}, {29, 41}},
                                   {"A^T B^T", tr, tr, {29, 37}, {41, 29}},
                                   {"narrowed A", nr, id, {37, 31}, {29, 41}}};
  for (const Case& c : cases) {
    for (DType dt : {DType::F32, DType::F64}) {
      const double tol = dt == DType::F32 ? 1e-5 : 1e-13;
      Tensor a1 = to(rnd(c.sa, 95), dt), b1 = to(rnd(c.sb, 96), dt);
      Tensor a2 = to(rnd(c.sa, 95), dt), b2 = to(rnd(c.sb, 96), dt);
      for (Tensor* t : {&a1, &b1, &a2, &b2}) t->set_requires_grad(true);
      Tensor r = matmul_reference(c.fa(a1), c.fb(b1)), m = matmul(c.fa(a2), c.fb(b2));
      INFO(c.name, " ", dtype_name(dt));
      SANF_CHECK_CLOSE(r, m, tol, tol);
      Tensor w = to(rnd(m.shape(), 97), dt);  // a loss sum(w * C) gives dC = w
      backward(sum(mul(r, w)));
      backward(sum(mul(m, w)));
      SANF_CHECK_CLOSE(a1.grad(), a2.grad(), tol, tol);
      SANF_CHECK_CLOSE(b1.grad(), b2.grad(), tol, tol);
    }
  }
  CHECK_THROWS_WITH_AS(matmul_reference(zeros({2, 3, 4}), zeros({4, 5})),
                       doctest::Contains("[matmul_reference] needs (M, K) x (K, N), got (2, 3, 4) x (4, 5)"), Error);
}

TEST_CASE("matmul and linear: errors name the op and the shapes") {
  CHECK_THROWS_WITH_AS(matmul(zeros({32, 64}), zeros({65, 10})),
                       doctest::Contains("[matmul] inner dims differ: (32, 64) x (65, 10)"), Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({3}), zeros({4})), doctest::Contains("[matmul] inner dims differ: (3,) x (4,)"),
                       Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 3, 4}), zeros({4, 4}, DType::F64)), doctest::Contains("[matmul] dtypes differ"),
                       Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 3, 4}), zeros({3, 4, 5})),
                       doctest::Contains("[matmul] batch dims do not broadcast: (2, 3, 4) x (3, 4, 5)"), Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({}), zeros({3})), doctest::Contains("[matmul] needs operands of at least 1 dim"),
                       Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 2}, DType::BF16), zeros({2, 2}, DType::BF16)),
                       doctest::Contains("[matmul] needs f32 or f64"), Error);
  CHECK_THROWS_WITH_AS(linear(zeros({8, 64}), zeros({10, 65})),
                       doctest::Contains("[linear] x (8, 64) and weight (10, 65) differ in the input width"), Error);
  CHECK_THROWS_WITH_AS(linear(zeros({8, 64}), zeros({10, 64}), zeros({11})),
                       doctest::Contains("[linear] bias (11,) does not match weight (10, 64): needs (10,)"), Error);
  CHECK_THROWS_WITH_AS(linear(zeros({8, 64}), zeros({64})), doctest::Contains("[linear] weight must be (out, in)"),
                       Error);
  CHECK_THROWS_WITH_AS(linear(zeros({8, 64}), zeros({10, 64}, DType::F64)), doctest::Contains("[linear] dtypes differ"),
                       Error);
}
