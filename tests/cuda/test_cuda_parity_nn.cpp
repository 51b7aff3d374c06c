// tests/cuda/test_cuda_parity_nn.cpp: CPU-CUDA parity of reductions, softmax, cross-entropy, layer norm,
// matmul and linear, joining and indexing, patchify and token pooling, the multi-tensor sum of squares and
// Adam: forward outputs and input gradients, f32 and f64, with sizes chosen to reach every thread mapping
// of the CUDA kernels (rows shorter and longer than a block, column reductions, several layer-norm slabs,
// grids larger than one wave, more reduction tasks than blocks in a grid).
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "kernels/adam.h"
#include "kernels/reduce.h"
#include "tests/cuda/parity.h"

using namespace sanf;
using namespace sanf::cuda_testing;
using V = std::vector<Tensor>;

TEST_CASE("cuda parity: sum") {
  SANF_SKIP_WITHOUT_CUDA();
  const Tensor x = rin({6, 7, 45}, 100);
  check_parity_both("sum all", [](const V& v) { return sum(v[0]); }, {x});
  check_parity_both("sum last (rows)", [](const V& v) { return sum(v[0], {-1}); }, {x});
  check_parity_both("sum first (columns)", [](const V& v) { return sum(v[0], {0}); }, {x});
  check_parity_both("sum middle keepdim", [](const V& v) { return sum(v[0], {1}, true); }, {x});
  check_parity_both("sum two adjacent", [](const V& v) { return sum(v[0], {1, 2}); }, {x});
  check_parity_both("sum non-adjacent", [](const V& v) { return sum(v[0], {0, 2}); }, {x});
  check_parity_both("sum of transposed view", [](const V& v) { return sum(transpose(v[0], 0, 2), {1}); }, {x});
  // Long rows and long columns (many iterations per thread, several warps).
  check_parity_both("sum long rows", [](const V& v) { return sum(v[0], {1}); }, {rin({3, 5000}, 101)});
  check_parity_both("sum long columns", [](const V& v) { return sum(v[0], {0}); }, {rin({3000, 70}, 102)});
  check_parity("sum many rows", [](const V& v) { return sum(v[0], {1}); }, {rin({70000, 3}, 103)});
  check_parity("sum_to", [](const V& v) { return sum_to(v[0], {1, 7, 1}); }, {x});
}

TEST_CASE("cuda parity: mean") {
  SANF_SKIP_WITHOUT_CUDA();
  const Tensor x = rin({6, 7, 45}, 110);
  check_parity_both("mean all", [](const V& v) { return mean(v[0]); }, {x});
  check_parity_both("mean last", [](const V& v) { return mean(v[0], {-1}); }, {x});
  check_parity_both("mean first keepdim", [](const V& v) { return mean(v[0], {0}, true); }, {x});
  check_parity_both("mean non-adjacent", [](const V& v) { return mean(v[0], {0, 2}); }, {x});
}

TEST_CASE("cuda parity: max") {
  SANF_SKIP_WITHOUT_CUDA();
  const Tensor x = rin({6, 7, 45}, 120);
  check_parity_both("max all", [](const V& v) { return max(v[0]); }, {x});
  check_parity_both("max last", [](const V& v) { return max(v[0], {-1}); }, {x});
  check_parity_both("max first", [](const V& v) { return max(v[0], {0}); }, {x});
  check_parity_both("max middle keepdim", [](const V& v) { return max(v[0], {1}, true); }, {x});
  check_parity_both("max non-adjacent", [](const V& v) { return max(v[0], {0, 2}); }, {x});
  check_parity_both("max long rows", [](const V& v) { return max(v[0], {1}); }, {rin({3, 5000}, 121)});
  check_parity_both("max long columns", [](const V& v) { return max(v[0], {0}); }, {rin({3000, 70}, 122)});
}

TEST_CASE("cuda parity: max argmax ties and NaN (kernel level, exact)") {
  SANF_SKIP_WITHOUT_CUDA();
  // Rows with ties (the first maximum wins), NaN (the first NaN wins), all -inf, and long rows where the
  // maximum sits in different warps; once as rows (I == 1) and once as columns (I > 1).
  const int64_t R = 700;
  std::vector<double> v;
  for (int row = 0; row < 6; ++row)
    for (int64_t r = 0; r < R; ++r) {
      double e = std::sin(double(r * 7 + row));
      if (row == 1 && (r == 300 || r == 650)) e = 5.0;             // tie: 300 wins
      if (row == 2 && (r == 400 || r == 500)) e = std::nan("");    // first NaN: 400
      if (row == 3) e = -std::numeric_limits<double>::infinity();  // all -inf: position 0
      if (row == 4 && r == R - 1) e = 9.0;                         // the very last
      if (row == 5 && (r == 0 || r == 33)) e = 2.0;                // the very first, tied
      v.push_back(e);
    }
  for (DType dt : {DType::F32, DType::F64}) {
    INFO("dtype ", dtype_name(dt));
    // Rows: x (6, R, 1).
    Tensor xc = Tensor::from_vector(v, {6, R}, dt), xg = xc.copy_to_device(Device::CUDA);
    Tensor oc = Tensor::empty({6}, dt), og = Tensor::empty({6}, dt, Device::CUDA);
    Tensor ac = Tensor::empty({6}, DType::I64), ag = Tensor::empty({6}, DType::I64, Device::CUDA);
    kernels::reduce(kernels::ReduceOp::Max, xc, oc, ac, 6, R, 1);
    kernels::reduce(kernels::ReduceOp::Max, xg, og, ag, 6, R, 1);
    expect_equal("max rows values", og, oc);
    expect_equal("max rows argmax", ag, ac);
    CHECK(ac.to_vector()[1] == 300);
    CHECK(ac.to_vector()[2] == 400);
    CHECK(ac.to_vector()[3] == 0);
    CHECK(ac.to_vector()[4] == double(R - 1));
    CHECK(ac.to_vector()[5] == 0);
    // Columns: the transpose, x (1, R, 6).
    Tensor tc = contiguous(transpose(xc, 0, 1)), tg = contiguous(transpose(xg, 0, 1));
    kernels::reduce(kernels::ReduceOp::Max, tc, oc, ac, 1, R, 6);
    kernels::reduce(kernels::ReduceOp::Max, tg, og, ag, 1, R, 6);
    expect_equal("max columns values", og, oc);
    expect_equal("max columns argmax", ag, ac);
    // The backward routes to the argmax.
    Tensor dout_c = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {6}, dt), dout_g = dout_c.copy_to_device(Device::CUDA);
    Tensor dxc = Tensor::empty({1, R, 6}, dt), dxg = Tensor::empty({1, R, 6}, dt, Device::CUDA);
    kernels::reduce_max_backward(dout_c, ac, dxc, 1, R, 6);
    kernels::reduce_max_backward(dout_g, ag, dxg, 1, R, 6);
    expect_equal("max backward", dxg, dxc);
  }
}

namespace {
// The M rows of R values v (dtype dt) reduced by the kernels on both devices: the maxima and their first
// positions exactly, the sums to dt's tolerance. Returns the CUDA positions.
std::vector<double> check_split_rows(const std::string& what, const std::vector<double>& v, int64_t M, int64_t R,
                                     DType dt) {
  const Tensor xc = Tensor::from_vector(v, {M, R}, dt), xg = xc.copy_to_device(Device::CUDA);
  Tensor oc = Tensor::empty({M}, dt), og = full({M}, NAN, dt).copy_to_device(Device::CUDA);
  Tensor ac = Tensor::empty({M}, DType::I64), ag = full({M}, -1, DType::I64).copy_to_device(Device::CUDA);
  kernels::reduce(kernels::ReduceOp::Max, xc, oc, ac, M, R, 1);
  kernels::reduce(kernels::ReduceOp::Max, xg, og, ag, M, R, 1);
  expect_equal(what + ": max values", og, oc);
  expect_equal(what + ": max positions", ag, ac);
  kernels::reduce(kernels::ReduceOp::Sum, xc, oc, Tensor(), M, R, 1);
  kernels::reduce(kernels::ReduceOp::Sum, xg, og, Tensor(), M, R, 1);
  expect_close(what + ": sums", og, oc, tol_for(dt));
  return ag.to_vector();
}
}  // namespace

TEST_CASE("cuda parity: split reductions (few outputs over a long axis: a full sum, a bias gradient)") {
  SANF_SKIP_WITHOUT_CUDA();
  // Few outputs cut the reduced axis into pieces, one block each, and a second kernel combines the partials
  // (kernels/cuda/reduce.cu): a full sum (M = I = 1, a million values: 1024 pieces), a bias gradient's column
  // sum (I = 100 over 5000 rows: 4 column blocks, 19 pieces), and several m with a short last piece.
  check_parity("sum of a million values", [](const V& v) { return sum(v[0]); }, {rin({1000, 1000}, 180)});
  check_parity("max of a million values", [](const V& v) { return max(v[0], {0, 1}); }, {rin({1000, 1000}, 181)});
  check_parity("column sum over 5000 rows", [](const V& v) { return sum(v[0], {0}); }, {rin({5000, 100}, 182)});
  check_parity("column max over 5000 rows", [](const V& v) { return max(v[0], {0}); }, {rin({5000, 100}, 183)});
  check_parity("middle sum, 3 x 3001 x 40", [](const V& v) { return sum(v[0], {1}); }, {rin({3, 3001, 40}, 184)});
  // Kernel level, exact against the CPU: the maximum and its first position when ties and a NaN fall in
  // different pieces (rows of 100000: 391 pieces of 256).
  const int64_t R = 100000;
  std::vector<double> v(size_t(3 * R));
  for (int64_t k = 0; k < 3 * R; ++k) v[size_t(k)] = std::sin(double(k));
  v[size_t(0 * R + 70000)] = v[size_t(0 * R + 99999)] = v[size_t(0 * R + 200)] = 3.0;  // tie: 200 wins
  v[size_t(1 * R + 50000)] = std::nan("");                                             // NaN wins
  v[size_t(1 * R + 90000)] = std::nan("");
  v[size_t(2 * R + R - 1)] = 7.0;  // the very last
  for (DType dt : {DType::F32, DType::F64}) {
    INFO("dtype ", dtype_name(dt));
    CHECK(check_split_rows("split rows", v, 3, R, dt) == std::vector<double>{200, 50000, double(R - 1)});
    // The same as columns: (1, R, 3).
    const Tensor xc = Tensor::from_vector(v, {3, R}, dt), xg = xc.copy_to_device(Device::CUDA);
    Tensor oc = Tensor::empty({3}, dt), og = full({3}, NAN, dt).copy_to_device(Device::CUDA);
    Tensor ac = Tensor::empty({3}, DType::I64), ag = full({3}, -1, DType::I64).copy_to_device(Device::CUDA);
    const Tensor tc = contiguous(transpose(xc, 0, 1)), tg = contiguous(transpose(xg, 0, 1));
    kernels::reduce(kernels::ReduceOp::Max, tc, oc, ac, 1, R, 3);
    kernels::reduce(kernels::ReduceOp::Max, tg, og, ag, 1, R, 3);
    expect_equal("split max columns values", og, oc);
    expect_equal("split max columns argmax", ag, ac);
    kernels::reduce(kernels::ReduceOp::Sum, tc, oc, Tensor(), 1, R, 3);
    kernels::reduce(kernels::ReduceOp::Sum, tg, og, Tensor(), 1, R, 3);
    expect_close("split sum columns", og, oc, tol_for(dt));
  }
  // R = 66,049: 258 pieces of 257 rows, the last one empty (kernels/cuda/reduce.cu, pieces_for); the maximum
  // in the last non-empty piece.
  const int64_t R2 = 66049;
  std::vector<double> w(static_cast<size_t>(R2), 0.0);
  for (int64_t k = 0; k < R2; ++k) w[size_t(k)] = std::cos(double(k));
  w[size_t(R2 - 1)] = 5.0;
  for (DType dt : {DType::F32, DType::F64}) {
    INFO("dtype ", dtype_name(dt));
    CHECK(check_split_rows("an empty last piece", w, 1, R2, dt) == std::vector<double>{double(R2 - 1)});
  }
}

TEST_CASE("cuda parity: sum_squares over many tensors (a gradient norm) and the multi-tensor Adam") {
  SANF_SKIP_WITHOUT_CUDA();
  // 70 tensors: more than one launch's 64, sizes across the 65,536-element chunks, empty ones among them.
  for (DType dt : {DType::F32, DType::F64}) {
    INFO("dtype ", dtype_name(dt));
    std::vector<Tensor> cpu_ts, gpu_ts;
    for (int i = 0; i < 70; ++i) {
      const int64_t n = i % 9 == 4 ? 0 : (i % 7 == 0 ? 65536 * (i / 7) + 3 : 1 + 97 * i);
      cpu_ts.push_back(to(rin({n}, uint64_t(300 + i)), dt));
      gpu_ts.push_back(cpu_ts.back().copy_to_device(Device::CUDA));
    }
    const double c = kernels::sum_squares(cpu_ts), g = kernels::sum_squares(gpu_ts);
    MESSAGE("sum_squares: cpu ", c, ", cuda ", g);
    CHECK(std::fabs(g - c) <= 1e-12 * c);
    gpu_ts.push_back(full({5}, NAN, dt).copy_to_device(Device::CUDA));
    CHECK(std::isnan(kernels::sum_squares(gpu_ts)));
  }
  // Adam over 30 parameters (two launches of up to 24), one empty, each at its own step: the CUDA update
  // against the CPU's.
  const kernels::AdamArgs a{0.01, 0.9, 0.999, 1e-8, 1e-4, 0};
  for (DType dt : {DType::F32, DType::F64}) {
    INFO("dtype ", dtype_name(dt));
    std::vector<std::array<Tensor, 4>> cpu_t, gpu_t;
    std::vector<kernels::AdamSlot> cpu_s, gpu_s;
    for (int i = 0; i < 30; ++i) {
      const int64_t n = i == 7 ? 0 : 1 + 4099 * i;
      std::array<Tensor, 4> c, g;
      for (size_t k = 0; k < 4; ++k) c[k] = to(rin({n}, uint64_t(400 + 4 * i) + k), dt);
      c[3] = mul(c[3], c[3]);
      for (size_t k = 0; k < 4; ++k) g[k] = c[k].copy_to_device(Device::CUDA);
      cpu_t.push_back(c), gpu_t.push_back(g);
      cpu_s.push_back({c[0].data_ptr(), c[1].data_ptr(), c[2].data_ptr(), c[3].data_ptr(), n, 1 + i % 4});
      gpu_s.push_back({g[0].data_ptr(), g[1].data_ptr(), g[2].data_ptr(), g[3].data_ptr(), n, 1 + i % 4});
    }
    kernels::adam_multi(Device::CPU, dt, cpu_s, a);
    kernels::adam_multi(Device::CUDA, dt, gpu_s, a);
    for (size_t i = 0; i < cpu_t.size(); ++i) {
      INFO("parameter ", i);
      expect_close("adam p", gpu_t[i][0], cpu_t[i][0], tol_for(dt));
      expect_close("adam m", gpu_t[i][2], cpu_t[i][2], tol_for(dt));
      expect_close("adam v", gpu_t[i][3], cpu_t[i][3], tol_for(dt));
    }
  }
}

TEST_CASE("cuda parity: reductions with more tasks than one grid has blocks (column tasks and rows)") {
  SANF_SKIP_WITHOUT_CUDA();
  // The column kernel (I > 1) has one task per (m, 32 adjacent columns): M * ceil(I / 32) tasks on a grid
  // capped at 65536 blocks, each block looping over tasks. (30000, 3, 70): 3 column blocks per m (the last
  // holds 6 columns), 90000 tasks, so the blocks below 24464 take a second task. The row kernel (I == 1)
  // has one block per row under the same cap: 70000 rows.
  constexpr int64_t kMaxBlocks = 65536;
  const int64_t M = 30000, R = 3, I = 70;
  REQUIRE(M * ((I + 31) / 32) > kMaxBlocks);
  const Tensor x = rin({M, R, I}, 125);
  check_parity("sum over the middle dim, 90000 column tasks", [](const V& v) { return sum(v[0], {1}); }, {x});
  check_parity("max over the middle dim, 90000 column tasks", [](const V& v) { return max(v[0], {1}); }, {x});
  check_parity("max many rows", [](const V& v) { return max(v[0], {1}); }, {rin({70000, 3}, 126)});
  // Kernel level, exact, into outputs uploaded full of NaN (and an argmax of -1): a task the loop skips
  // leaves its outputs untouched.
  for (const auto& [m, r, i] : {std::array<int64_t, 3>{M, R, I}, std::array<int64_t, 3>{70000, 3, 1}}) {
    INFO("M ", m, " R ", r, " I ", i);
    const Tensor xc = to(rin({m, r, i}, 127), DType::F32), xg = xc.copy_to_device(Device::CUDA);
    for (kernels::ReduceOp op : {kernels::ReduceOp::Sum, kernels::ReduceOp::Max}) {
      const bool is_max = op == kernels::ReduceOp::Max;
      const char* name = is_max ? "max" : "sum";
      INFO(name);
      Tensor oc = Tensor::empty({m * i}), og = full({m * i}, NAN).copy_to_device(Device::CUDA);
      Tensor ac = is_max ? Tensor::empty({m * i}, DType::I64) : Tensor();
      Tensor ag = is_max ? full({m * i}, -1, DType::I64).copy_to_device(Device::CUDA) : Tensor();
      kernels::reduce(op, xc, oc, ac, m, r, i);
      kernels::reduce(op, xg, og, ag, m, r, i);
      expect_close("reduce values", og, oc, tol_for(DType::F32));
      if (is_max) expect_equal("reduce argmax", ag, ac);
    }
  }
}

TEST_CASE("cuda parity: softmax and log_softmax") {
  SANF_SKIP_WITHOUT_CUDA();
  for (bool log : {false, true}) {
    auto sm = [log](const Tensor& x, int d) { return log ? log_softmax(x, d) : softmax(x, d); };
    const std::string n = log ? "log_softmax" : "softmax";
    check_parity_both(n + " last dim", [sm](const V& v) { return sm(v[0], -1); }, {rin({5, 7, 33}, 130, 3.0)});
    check_parity_both(n + " middle dim", [sm](const V& v) { return sm(v[0], 1); }, {rin({5, 7, 33}, 131, 3.0)});
    check_parity_both(n + " of transposed view", [sm](const V& v) { return sm(transpose(v[0], 0, 1), -1); },
                      {rin({9, 6}, 132)});
    check_parity_both(n + " one column", [sm](const V& v) { return sm(v[0], -1); }, {rin({4, 1}, 133)});
    check_parity_both(n + " long rows", [sm](const V& v) { return sm(v[0], -1); }, {rin({3, 3000}, 134, 4.0)});
    // Each register count of the one-warp-per-row kernel at its edges, and the first width past it.
    for (int64_t cols : {128, 129, 256, 300, 512, 1000, 1024, 1025})
      check_parity_both(n + " width " + std::to_string(cols), [sm](const V& v) { return sm(v[0], -1); },
                        {rin({5, cols}, 138 + cols, 3.0)});
    check_parity(n + " many rows (attention-sized)", [sm](const V& v) { return sm(v[0], -1); },
                 {rin({70000, 13}, 135, 2.0)});
    check_parity_both(n + " large logits", [sm](const V& v) { return sm(v[0], -1); }, {rin({4, 50}, 136, 1.0, 80.0)});
    // Logits near 1e4 (f32 ulp 1e-3): log_softmax's top value is near 0 and must come out exact-ish, which
    // needs (x - m) - log(s) rather than x - (m + log(s)).
    check_parity_both(n + " logits near 1e4", [sm](const V& v) { return sm(v[0], -1); },
                      {rin({4, 50}, 137, 1.0, 1e4)});
  }
}

TEST_CASE("cuda parity: layer_norm") {
  SANF_SKIP_WITHOUT_CUDA();
  auto ln = [](const V& v) { return layer_norm(v[0], v[1], v[2], 1e-6); };
  check_parity_both("layer_norm small", ln, {rin({3, 5, 8}, 140), rin({8}, 141, 0.5, 1.0), rin({8}, 142)});
  check_parity_both("layer_norm width 1000", ln,
                    {rin({7, 1000}, 143, 2.0, 3.0), rin({1000}, 144, 0.5, 1.0), rin({1000}, 145)});
  // 1100 rows: 64 slabs of 18 rows (the last one short) in the dweight/dbias reduction.
  check_parity_both("layer_norm many rows", ln, {rin({1100, 40}, 146), rin({40}, 147, 0.5, 1.0), rin({40}, 148)});
  check_parity("layer_norm 70000 rows", ln, {rin({70000, 24}, 149), rin({24}, 150, 0.5, 1.0), rin({24}, 151)});
  check_parity_both("layer_norm of transposed view",
                    [](const V& v) { return layer_norm(transpose(v[0], 0, 1), v[1], v[2], 1e-5); },
                    {rin({6, 16}, 152), rin({6}, 153, 0.5, 1.0), rin({6}, 154)});
  check_parity_both("layer_norm large mean", ln,
                    {rin({4, 64}, 155, 0.1, 1000.0), rin({64}, 156, 0.5, 1.0), rin({64}, 157)});
  check_parity_both("layer_norm single row", ln, {rin({1, 300}, 158), rin({300}, 159, 0.5, 1.0), rin({300}, 160)});
}

TEST_CASE("cuda parity: matmul") {
  SANF_SKIP_WITHOUT_CUDA();
  auto mm = [](const V& v) { return matmul(v[0], v[1]); };
  check_parity_both("matmul 2-D", mm, {rin({37, 29}, 170), rin({29, 41}, 171)});
  check_parity_both("matmul batched", mm, {rin({3, 17, 9}, 172), rin({3, 9, 13}, 173)});
  check_parity_both("matmul broadcast batch (shared B)", mm, {rin({2, 3, 17, 9}, 174), rin({9, 13}, 175)});
  check_parity_both("matmul broadcast batch (shared A)", mm, {rin({17, 9}, 176), rin({4, 9, 13}, 177)});
  check_parity_both("matmul broadcast batch dims", mm, {rin({2, 1, 5, 6}, 178), rin({1, 3, 6, 4}, 179)});
  check_parity_both("matmul transposed A", [](const V& v) { return matmul(transpose(v[0], 0, 1), v[1]); },
                    {rin({29, 37}, 180), rin({29, 41}, 181)});
  check_parity_both("matmul transposed B (q K^T)", [](const V& v) { return matmul(v[0], transpose(v[1], -1, -2)); },
                    {rin({2, 3, 10, 8}, 182), rin({2, 3, 12, 8}, 183)});
  check_parity_both("matmul both transposed",
                    [](const V& v) { return matmul(transpose(v[0], 0, 1), transpose(v[1], 0, 1)); },
                    {rin({29, 37}, 184), rin({41, 29}, 185)});
  check_parity_both("matmul narrowed (strided rows)",
                    [](const V& v) { return matmul(narrow(v[0], 1, 2, 20), narrow(v[1], 0, 3, 20)); },
                    {rin({15, 30}, 186), rin({25, 7}, 187)});
  check_parity_both("matmul permuted batch (copied)",
                    [](const V& v) {
                      return matmul(permute(v[0], {1, 0, 2}), v[1]);
                    },
                    {rin({5, 3, 6}, 188), rin({3, 6, 4}, 189)});
  check_parity_both("matmul vector @ matrix", mm, {rin({9}, 190), rin({9, 5}, 191)});
  check_parity_both("matmul matrix @ vector", mm, {rin({5, 9}, 192), rin({9}, 193)});
  check_parity_both("matmul vector . vector", mm, {rin({9}, 194), rin({9}, 195)});
  check_parity("matmul large", mm, {rin({300, 257}, 196), rin({257, 190}, 197)});
}

TEST_CASE("cuda parity: linear") {
  SANF_SKIP_WITHOUT_CUDA();
  auto lin = [](const V& v) { return linear(v[0], v[1], v[2]); };
  check_parity_both("linear 2-D", lin, {rin({11, 7}, 200), rin({5, 7}, 201), rin({5}, 202)});
  check_parity_both("linear 3-D input", lin, {rin({2, 9, 7}, 203), rin({5, 7}, 204), rin({5}, 205)});
  check_parity_both("linear without bias", [](const V& v) { return linear(v[0], v[1]); },
                    {rin({2, 9, 7}, 206), rin({5, 7}, 207)});
  check_parity_both("linear of transposed input", [](const V& v) { return linear(transpose(v[0], 0, 1), v[1], v[2]); },
                    {rin({7, 11}, 208), rin({5, 7}, 209), rin({5}, 210)});
  check_parity("linear ViT-sized", lin, {rin({4, 197, 192}, 211), rin({576, 192}, 212, 0.05), rin({576}, 213)});
}

TEST_CASE("cuda parity: concat, split and chunk") {
  SANF_SKIP_WITHOUT_CUDA();
  check_parity_both("concat dim 0",
                    [](const V& v) {
                      return concat({v[0], v[1]}, 0);
                    },
                    {rin({2, 5}, 220), rin({3, 5}, 221)});
  check_parity_both("concat dim 1 with a transposed input",
                    [](const V& v) {
                      return concat({v[0], transpose(v[1], 0, 1), v[2]}, 1);
                    },
                    {rin({4, 2}, 222), rin({3, 4}, 223), rin({4, 1}, 224)});
  check_parity_both("concat last dim 3-D",
                    [](const V& v) {
                      return concat({v[0], v[1]}, -1);
                    },
                    {rin({2, 3, 4}, 225), rin({2, 3, 6}, 226)});
  const Tensor x = rin({4, 9, 3}, 227);
  for (int k = 0; k < 3; ++k) {
    check_parity_both("split piece " + std::to_string(k),
                      [k](const V& v) {
                        return mul(split(v[0], {2, 3, 4}, 1)[size_t(k)], 2.0);
                      },
                      {x});
  }
  check_parity_both("split pieces recombined",
                    [](const V& v) {
                      std::vector<Tensor> p = split(v[0], {2, 3, 4}, 1);
                      return add(mul(sum(p[0], {1}), 2.0), sub(sum(p[2], {1}), sum(p[1], {1})));
                    },
                    {x});
  check_parity_both("chunk", [](const V& v) { return mul(chunk(v[0], 2, 0)[1], 3.0); }, {x});
}

TEST_CASE("cuda parity: cross_entropy") {
  SANF_SKIP_WITHOUT_CUDA();
  // Labels on the host (moved by the op) and on the device (moved by check_parity); rows shorter and longer
  // than a block, and more rows than one grid of row blocks.
  auto labels = [](int64_t n, int64_t c) {
    std::vector<double> v;
    for (int64_t r = 0; r < n; ++r) v.push_back(double((r * 7 + 3) % c));
    return index_tensor(v);
  };
  const Tensor y = labels(37, 10);
  check_parity_both("cross_entropy (37, 10)", [y](const V& v) { return cross_entropy(v[0], y); },
                    {rin({37, 10}, 270, 3.0)});
  check_parity_both("cross_entropy labels on the device", [](const V& v) { return cross_entropy(v[0], v[1]); },
                    {rin({37, 10}, 271, 3.0), y});
  check_parity_both("cross_entropy of large logits", [y](const V& v) { return cross_entropy(v[0], y); },
                    {rin({37, 10}, 272, 5.0, 1e3)});
  const Tensor y_long = labels(3, 3000);
  check_parity_both("cross_entropy long rows", [y_long](const V& v) { return cross_entropy(v[0], y_long); },
                    {rin({3, 3000}, 273, 4.0)});
  const Tensor y_many = labels(70000, 13);
  check_parity("cross_entropy many rows", [y_many](const V& v) { return cross_entropy(v[0], y_many); },
               {rin({70000, 13}, 274, 2.0)});
  CHECK_THROWS_WITH_AS(cross_entropy(zeros({2, 3}, DType::F32, Device::CUDA), to(index_tensor({0, 3}), Device::CUDA)),
                       doctest::Contains("label 3 (row 1)"), Error);
}

TEST_CASE("cuda parity: index_select") {
  SANF_SKIP_WITHOUT_CUDA();
  const Tensor idx = index_tensor({3, 0, 3, 1, 4, 3});  // repeated entries: their gradients add up
  check_parity_both("index_select dim 0", [idx](const V& v) { return index_select(v[0], 0, idx); }, {rin({5, 6}, 230)});
  check_parity_both("index_select middle dim", [idx](const V& v) { return index_select(v[0], 1, idx); },
                    {rin({2, 5, 7}, 231)});
  check_parity_both("index_select last dim", [idx](const V& v) { return index_select(v[0], -1, idx); },
                    {rin({3, 4, 5}, 232)});
  check_parity_both("index_select of transposed view",
                    [idx](const V& v) { return index_select(transpose(v[0], 0, 1), 0, idx); }, {rin({4, 5}, 233)});
  // The index passed through check_parity (moved to CUDA for the CUDA run).
  check_parity_both("index_select with the index on the device", [](const V& v) { return index_select(v[0], 1, v[1]); },
                    {rin({3, 6, 4}, 234), idx});
  // Many repeats of one row: the scatter-add sums 500 contributions per element.
  std::vector<double> rep(500);
  for (size_t i = 0; i < rep.size(); ++i) rep[i] = double(i % 3);
  const Tensor many = index_tensor(rep);
  check_parity_both("index_select 500 repeats", [many](const V& v) { return index_select(v[0], 0, many); },
                    {rin({3, 40}, 235)});
}

TEST_CASE("cuda parity: patchify") {
  SANF_SKIP_WITHOUT_CUDA();
  check_parity_both("patchify p 4", [](const V& v) { return patchify(v[0], 4); }, {rin({2, 3, 8, 12}, 240)});
  check_parity_both("patchify p 1", [](const V& v) { return patchify(v[0], 1); }, {rin({1, 2, 3, 3}, 241)});
  check_parity("patchify ViT-sized then linear (patch embedding)",
               [](const V& v) { return linear(patchify(v[0], 16), v[1], v[2]); },
               {rin({2, 3, 64, 48}, 242), rin({32, 768}, 243, 0.05), rin({32}, 244)});
}

TEST_CASE("cuda parity: adaptive_avg_pool_tokens") {
  SANF_SKIP_WITHOUT_CUDA();
  struct Case {
    int64_t Gh, Gw, gh, gw;
  };
  for (Case c : {Case{4, 6, 2, 3}, Case{5, 7, 3, 2}, Case{24, 24, 8, 8}, Case{7, 5, 7, 5}, Case{2, 2, 3, 3},
                 Case{6, 4, 1, 1}, Case{9, 11, 4, 6}}) {
    const std::string n = "pool " + std::to_string(c.Gh) + "x" + std::to_string(c.Gw) + " -> " + std::to_string(c.gh) +
                          "x" + std::to_string(c.gw);
    check_parity_both(n, [c](const V& v) { return adaptive_avg_pool_tokens(v[0], c.Gh, c.Gw, c.gh, c.gw); },
                      {rin({2, c.Gh * c.Gw, 37}, 250 + uint64_t(c.Gh * 100 + c.gh))});
  }
}
