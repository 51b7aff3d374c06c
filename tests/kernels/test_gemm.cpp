// tests/kernels/test_gemm.cpp: the blocked, packed cpu::gemm against cpu::gemm_reference (the triple loop).
// Every case runs with A transposed (packed) and not (read in place by the micro-kernel), and every f32 case
// with both register tiles, 6 x 16 and 12 x 32 (the AVX-512 one: its code is also compiled for the ISA
// levels below, so its blocking, packing and edge handling are checked on any CPU; on an AVX-512 CPU the
// same source runs as AVX-512 code).
//
// Sizes are odd and cross the block sizes (MR = 6 / 12, NR = 16 / 32 in f32, 6 x 8 in f64; KC = 768 / 256,
// MC = 72 / 96), so every edge tile and every K block boundary is exercised; leading dimensions are padded, batches use nonzero and zero
// (broadcast) strides, and alpha / beta take the values whose handling differs (beta == 0 never reads C).
// Tolerance: the reference sums in double, so f32 results may differ by the rounding of a K-term sum,
// |err| <= K * 2^-24 * (|alpha| sum_k |a_ik b_kj| + |beta c_ij|); the scale is computed from |A|, |B|, |C|.
// The epilogue (bias, GELU) is checked the same way: the bias joins the scale, the GELU (slope at most
// 1.13) passes that error on and adds its own (the f32 GELU is within 8 ulp, kernels/cpu/vec_math.h).
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "core/rng.h"
#include "kernels/matmul.h"

using namespace sanf;
using kernels::GemmArgs;

namespace {

struct Case {
  int64_t M, N, K;
  bool ta = false, tb = false;
  int64_t pad = 0;  // added to every leading dimension
  int64_t batch = 1;
  bool bcast_a = false, bcast_b = false;  // batch stride 0 for A / B
  double alpha = 1.0, beta = 0.0;
  bool bias = false, gelu = false;  // the epilogue
};

std::string describe(const Case& c) {
  return cat("M=", c.M, " N=", c.N, " K=", c.K, " ta=", c.ta, " tb=", c.tb, " pad=", c.pad, " batch=", c.batch,
             " bcast_a=", c.bcast_a, " bcast_b=", c.bcast_b, " alpha=", c.alpha, " beta=", c.beta, " bias=", c.bias,
             " gelu=", c.gelu);
}

// Runs one case in dtype T; returns the worst |fast - ref| / bound over C (<= 1 passes).
template <typename T>
double run_case(const Case& c, uint64_t seed) {
  const DType dt = std::is_same_v<T, float> ? DType::F32 : DType::F64;
  // Stored shapes: A is M x K (or K x M with ta), B is K x N (or N x K with tb), C is M x N.
  const int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
  const int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
  GemmArgs g;
  g.trans_a = c.ta, g.trans_b = c.tb;
  g.M = c.M, g.N = c.N, g.K = c.K;
  g.alpha = c.alpha, g.beta = c.beta;
  g.lda = a_cols + c.pad, g.ldb = b_cols + c.pad, g.ldc = c.N + c.pad;
  g.stride_a = c.bcast_a ? 0 : a_rows * g.lda;
  g.stride_b = c.bcast_b ? 0 : b_rows * g.ldb;
  g.stride_c = c.M * g.ldc;
  g.batch = c.batch;

  Generator gen(seed);
  auto fill = [&](int64_t n) {
    std::vector<T> v(size_t(std::max<int64_t>(n, 1)));
    for (T& x : v) x = T(gen.normal());
    return v;
  };
  std::vector<T> A = fill(c.bcast_a ? a_rows * g.lda : c.batch * a_rows * g.lda);
  std::vector<T> B = fill(c.bcast_b ? b_rows * g.ldb : c.batch * b_rows * g.ldb);
  std::vector<T> C0 = fill(c.batch * c.M * g.ldc);
  std::vector<T> bias = fill(c.N);
  if (c.bias) g.bias = bias.data();
  g.gelu = c.gelu;
  // beta == 0 promises C is not read: start the fast kernel's C as NaN.
  std::vector<T> fast = C0, ref = C0;
  if (c.beta == 0) std::fill(fast.begin(), fast.end(), std::numeric_limits<T>::quiet_NaN());

  g.A = A.data(), g.B = B.data();
  g.C = fast.data();
  kernels::cpu::gemm(dt, g);
  g.C = ref.data();
  kernels::cpu::gemm_reference(dt, g);

  // Error scale: |alpha| (|A| @ |B|) + |beta| |C0|, from the reference kernel on absolute values.
  std::vector<T> absA = A, absB = B, scale = C0;
  for (T& x : absA) x = std::fabs(x);
  for (T& x : absB) x = std::fabs(x);
  for (T& x : scale) x = std::fabs(x);
  std::vector<T> absBias = bias;
  for (T& x : absBias) x = std::fabs(x);
  GemmArgs s = g;
  s.A = absA.data(), s.B = absB.data(), s.C = scale.data();
  s.alpha = std::fabs(c.alpha), s.beta = std::fabs(c.beta);
  s.bias = c.bias ? absBias.data() : nullptr;
  s.gelu = false;
  kernels::cpu::gemm_reference(dt, s);

  const double u = std::is_same_v<T, float> ? 0x1p-24 : 0x1p-53;
  double worst = 0;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j) {
        const size_t at = size_t(b * g.stride_c + i * g.ldc + j);
        double bound = double(c.K + 4) * u * double(scale[at]) + 1e-300;
        if (c.gelu) bound = 1.2 * bound + 8 * u * std::fabs(double(ref[at]));
        const double r = std::fabs(double(fast[at]) - double(ref[at])) / bound;
        if (!(r <= worst)) worst = std::isnan(r) ? INFINITY : r;
      }
  // The padding between rows of C is never written.
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = c.N; j < g.ldc; ++j) {
        const size_t at = size_t(b * g.stride_c + i * g.ldc + j);
        if (c.beta != 0 && fast[at] != C0[at]) worst = INFINITY;
        if (c.beta == 0 && !std::isnan(fast[at])) worst = INFINITY;
      }
  return worst;
}

// Forces one f32 tile for its lifetime (process-wide; the tests run one at a time).
struct TileScope {
  explicit TileScope(kernels::cpu::GemmTile t) { kernels::cpu::set_gemm_tile(t); }
  ~TileScope() { kernels::cpu::set_gemm_tile(kernels::cpu::GemmTile::Auto); }
};

void check_case(const Case& c, uint64_t seed) {
  INFO(describe(c));
  for (auto tile : {kernels::cpu::GemmTile::Narrow, kernels::cpu::GemmTile::Wide}) {
    TileScope scope(tile);
    INFO("f32 tile ", std::string(kernels::cpu::gemm_tile_name()));
    CHECK(run_case<float>(c, seed) <= 1.0);
  }
  CHECK(run_case<double>(c, seed + 1) <= 1.0);
}

}  // namespace

TEST_CASE("gemm: odd sizes, every transpose combination, padded leading dims") {
  const std::vector<std::array<int64_t, 3>> sizes = {{1, 1, 1}, {7, 5, 3}, {13, 17, 19}, {97, 33, 130}, {6, 16, 8},
                                                      {12, 32, 9}, {25, 65, 11}};
  uint64_t seed = 1;
  for (auto [M, N, K] : sizes)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (int64_t pad : {0, 3}) check_case({M, N, K, ta, tb, pad}, seed++);
}

TEST_CASE("gemm: sizes crossing the block sizes (MC, KC, NR edges), threaded") {
  // 300 rows: 5 M blocks of f32 (72) and 4 of f64 (96) with a ragged last one; K = 770 crosses KC (768
  // for f32, 256 for f64); N = 1030 is not a multiple of NR. Large enough to run on several threads.
  uint64_t seed = 100;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) check_case({300, 1030, 770, ta, tb, 5}, seed++);
  // Long K (several K blocks, beta applied once) and a short, wide C (threads split N).
  check_case({5, 700, 1700, false, true, 0, 1, false, false, 0.5, -0.7}, seed++);
  check_case({40, 3100, 70, true, false, 1, 1, false, false, 1.0, 1.0}, seed++);
}

TEST_CASE("gemm: alpha and beta") {
  uint64_t seed = 200;
  for (double beta : {0.0, 1.0, -0.7})
    for (bool ta : {false, true}) check_case({23, 41, 37, ta, !ta, 2, 1, false, false, 0.5, beta}, seed++);
  // beta == 0 with NaN in C (checked inside run_case) on a large, threaded problem too.
  check_case({150, 170, 300, false, false, 0, 1, false, false, 0.5, 0.0}, seed++);
}

TEST_CASE("gemm: batches with nonzero and zero (broadcast) strides") {
  uint64_t seed = 300;
  for (bool ba : {false, true})
    for (bool bb : {false, true})
      for (int64_t batch : {2, 5}) {
        check_case({7, 9, 11, false, true, 1, batch, ba, bb, 0.5, -0.7}, seed++);
        check_case({70, 90, 110, true, false, 0, batch, ba, bb, 1.0, 0.0}, seed++);
      }
}

TEST_CASE("gemm: K == 0 gives beta * C, and empty M or N writes nothing") {
  for (double beta : {0.0, 1.0, -0.7}) check_case({4, 5, 0, false, false, 1, 2, false, false, 0.5, beta}, 400);
  float c = 3.0f, a = 1.0f, b = 1.0f;
  GemmArgs g;
  g.M = 0, g.N = 1, g.K = 1, g.A = &a, g.B = &b, g.C = &c, g.lda = g.ldb = g.ldc = 1;
  kernels::cpu::gemm(DType::F32, g);
  g.M = 1, g.N = 0;
  kernels::cpu::gemm(DType::F32, g);
  CHECK(c == 3.0f);
}

TEST_CASE("gemm: a zero batch stride for C accumulates the batch in order, as the reference does") {
  // C += sum_b A_b @ B: beta = 1 with stride_c = 0.
  const int64_t M = 9, N = 10, K = 11, batch = 3;
  Generator gen(500);
  std::vector<double> A(size_t(batch * M * K)), B(size_t(K * N)), C(size_t(M * N));
  for (double& x : A) x = gen.normal();
  for (double& x : B) x = gen.normal();
  for (double& x : C) x = gen.normal();
  std::vector<double> fast = C, ref = C;
  GemmArgs g;
  g.M = M, g.N = N, g.K = K, g.beta = 1.0, g.batch = batch;
  g.A = A.data(), g.lda = K, g.stride_a = M * K;
  g.B = B.data(), g.ldb = N, g.stride_b = 0;
  g.ldc = N, g.stride_c = 0;
  g.C = fast.data();
  kernels::cpu::gemm(DType::F64, g);
  g.C = ref.data();
  kernels::cpu::gemm_reference(DType::F64, g);
  for (size_t i = 0; i < C.size(); ++i) CHECK(fast[i] == doctest::Approx(ref[i]).epsilon(1e-12));
}

TEST_CASE("gemm: the bias and GELU epilogue against the reference (every path, K blocks, batches)") {
  uint64_t seed = 600;
  for (bool gelu : {false, true}) {
    // Packed (ta) and in-place (not ta) A, both B layouts, edge tiles, padded rows.
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        Case c{13, 35, 19, ta, tb, 2};
        c.bias = true, c.gelu = gelu;
        check_case(c, seed++);
      }
    // Threaded, three K blocks in f32 (KC 768; seven in f64): the bias joins the first, the GELU follows
    // the last; beta != 0.
    Case big{150, 200, 1600, false, true, 1, 1, false, false, 0.5, -0.7};
    big.bias = true, big.gelu = gelu;
    check_case(big, seed++);
    // GELU alone, and batches (broadcast B, as linear's x @ W) sharing the bias.
    Case act{70, 90, 110, true, false, 0, 1};
    act.gelu = true;
    check_case(act, seed++);
    Case batched{33, 20, 40, false, true, 0, 5, false, true, 1.0, 0.0};
    batched.bias = true, batched.gelu = gelu;
    check_case(batched, seed++);
    // K == 0: C = act(beta * C + bias).
    Case empty{4, 5, 0, false, false, 1, 2, false, false, 0.5, 0.5};
    empty.bias = true, empty.gelu = gelu;
    check_case(empty, seed++);
  }
}

TEST_CASE("gemm: few rows and many columns (x W^T on a small batch, computed as C^T) against the reference") {
  // 8..64 rows with N >= 4M and a transposed B take the swapped path; its tiles are written transposed and
  // its bias runs along their rows. Edge tiles on both sides, padded rows, K across KC, batches, beta and
  // the epilogue; tb = false (and M = 7 or N < 4M) stay on the ordinary path, as a contrast.
  uint64_t seed = 700;
  for (auto [M, N, K] : std::vector<std::array<int64_t, 3>>{{8, 32, 5}, {17, 100, 33}, {32, 771, 800}, {64, 256, 64},
                                                             {7, 200, 20}, {40, 150, 30}})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        Case c{M, N, K, ta, tb, 3};
        c.bias = true, c.gelu = (seed % 2) == 0;
        c.beta = (seed % 3) == 0 ? 0.0 : -0.5;
        check_case(c, seed++);
      }
  Case batched{24, 130, 40, false, true, 1, 3, false, true, 1.0, 0.0};  // three matrices, one shared W
  batched.bias = true, batched.gelu = true;
  check_case(batched, seed++);
}

TEST_CASE("gemm: thin products (at most 4 rows or columns) in every layout against the reference") {
  // The flow's class attention: 196 x 4 x 384 (A B^T), 4 x 384 x 196 (A B), 384 x 4 x 196 (A^T B), batched
  // one matrix per thread; plus small single matrices, odd K, 257 rows or columns, the epilogue, beta and
  // broadcast operands: mostly-empty tiles on either side.
  uint64_t seed = 800;
  for (auto [M, N, K] : std::vector<std::array<int64_t, 3>>{
           {196, 4, 384}, {4, 384, 196}, {384, 4, 196}, {1, 1, 1}, {3, 257, 13}, {257, 2, 13}, {4, 4, 9}})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        Case c{M, N, K, ta, tb, 2, 4};
        c.bias = (seed % 2) == 0, c.gelu = (seed % 3) == 0;
        c.beta = (seed % 4) == 0 ? 0.0 : 0.75;
        c.bcast_b = (seed % 5) == 0;
        check_case(c, seed++);
      }
}

TEST_CASE("gemm: the f32 tile setting: both tiles are selectable, Auto follows the CPU") {
  using kernels::cpu::GemmTile;
  {
    TileScope narrow(GemmTile::Narrow);
    CHECK(std::string(kernels::cpu::gemm_tile_name()) == "6x16");
  }
  {
    TileScope wide(GemmTile::Wide);
    CHECK(std::string(kernels::cpu::gemm_tile_name()) == "12x32");
  }
  const bool avx512 = __builtin_cpu_supports("avx512f");
  CHECK(std::string(kernels::cpu::gemm_tile_name()) == (avx512 ? "12x32" : "6x16"));
}

TEST_CASE("gemm: dtypes other than f32 and f64 are refused") {
  GemmArgs g;
  g.M = g.N = g.K = 1;
  CHECK_THROWS_WITH_AS(kernels::cpu::gemm(DType::BF16, g), doctest::Contains("[matmul] unsupported dtype bf16"), Error);
  CHECK_THROWS_AS(kernels::cpu::gemm_reference(DType::I64, g), Error);
}
