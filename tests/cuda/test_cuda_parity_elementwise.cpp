// tests/cuda/test_cuda_parity_elementwise.cpp: CPU-CUDA parity of copies and conversions, views, and
// every unary and binary op (forward and input gradients), on contiguous, broadcast and strided inputs;
// and the elementwise and copy kernels on more elements than one grid has threads.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/ops.h"
#include "kernels/copy.h"
#include "kernels/elementwise.h"
#include "tests/cuda/parity.h"

using namespace sanf;
using namespace sanf::cuda_testing;
using V = std::vector<Tensor>;

TEST_CASE("cuda parity: copy, contiguous and clone") {
  SANF_SKIP_WITHOUT_CUDA();
  const Tensor x = rin({4, 5, 6}, 1);
  check_parity_both("clone", [](const V& v) { return clone(v[0]); }, {x});
  check_parity_both("contiguous of permute", [](const V& v) { return contiguous(permute(v[0], {2, 0, 1})); }, {x});
  check_parity_both("contiguous of narrow", [](const V& v) { return contiguous(narrow(v[0], 2, 1, 4)); }, {x});
  check_parity_both("contiguous of expand",
                    [](const V& v) {
                      return contiguous(expand(narrow(v[0], 0, 0, 1), {3, 5, 6}));
                    },
                    {x});
  check_parity("contiguous of a 7-dim transposed view",
               [](const V& v) {
                 return contiguous(transpose(reshape(v[0], {2, 2, 1, 5, 3, 2, 1}), 1, 5));
               },
               {x});
  // A large strided copy (many blocks of the grid-stride loop).
  check_parity("contiguous of a large transpose", [](const V& v) { return contiguous(transpose(v[0], 0, 1)); },
               {rin({300, 517}, 2)});
  // Strided source into a strided destination, kernel level, every dtype pair that is exact.
  for (DType src_dt : {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I64, DType::U8}) {
    for (DType dst_dt : {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I64, DType::U8}) {
      INFO("copy ", dtype_name(src_dt), " -> ", dtype_name(dst_dt));
      std::vector<double> v(60);
      for (size_t i = 0; i < v.size(); ++i) v[i] = double(i % 50);  // exact in every dtype
      Tensor src_cpu = permute(Tensor::from_vector(v, {3, 4, 5}, src_dt), {2, 0, 1});
      Tensor src_gpu = permute(Tensor::from_vector(v, {3, 4, 5}, src_dt, Device::CUDA), {2, 0, 1});
      Tensor dst_cpu = zeros({5, 3, 8}, dst_dt), dst_gpu = zeros({5, 3, 8}, dst_dt, Device::CUDA);
      kernels::copy(narrow(dst_cpu, 2, 2, 4), src_cpu);
      kernels::copy(narrow(dst_gpu, 2, 2, 4), src_gpu);
      expect_equal("strided copy", dst_gpu, dst_cpu);
    }
  }
}

TEST_CASE("cuda parity: to(dtype) round trips through bf16 and f16") {
  SANF_SKIP_WITHOUT_CUDA();
  const Tensor x = rin({7, 33}, 3, 3.0);
  for (DType low : {DType::BF16, DType::F16}) {
    INFO("storage dtype ", dtype_name(low));
    // The rounding (round to nearest even) is the same bits on both devices.
    Tensor xc = to(x, DType::F32), xg = to(to(x, Device::CUDA), DType::F32);
    expect_equal("to low", to(xg, low), to(xc, low));
    expect_equal("to low of a transposed view", to(transpose(xg, 0, 1), low), to(transpose(xc, 0, 1), low));
    expect_equal("round trip", to(to(xg, low), DType::F32), to(to(xc, low), DType::F32));
    expect_equal("low to f64", to(to(xg, low), DType::F64), to(to(xc, low), DType::F64));
    // Contiguous copy of a non-contiguous low-precision tensor.
    expect_equal("contiguous low", contiguous(transpose(to(xg, low), 0, 1)), contiguous(transpose(to(xc, low), 0, 1)));
    // Differentiable: the gradient comes back through both conversions.
    check_parity(std::string("round trip through ") + dtype_name(low),
                 [low](const V& v) { return mul(to(to(v[0], low), DType::F32), 2.0); }, {x});
  }
  // Extremes: overflow to inf in f16, subnormals, NaN.
  Tensor e = Tensor::from_vector({70000.0, -1e-6, 6e-8, 1e-40, -0.0, 65504.0, NAN, 3.0e38}, {8}, DType::F32);
  for (DType low : {DType::BF16, DType::F16})
    expect_equal(std::string("extremes to ") + dtype_name(low), to(to(e, Device::CUDA), low), to(e, low));
  // Integer conversions of integral values.
  Tensor ints = Tensor::from_vector({0, 1, 2, 200, 255, 17}, {6}, DType::F32);
  expect_equal("to i64", to(to(ints, Device::CUDA), DType::I64), to(ints, DType::I64));
  expect_equal("to u8", to(to(ints, Device::CUDA), DType::U8), to(ints, DType::U8));
  expect_equal("u8 to f32", to(to(to(ints, DType::U8), Device::CUDA), DType::F32), to(to(ints, DType::U8), DType::F32));
}

TEST_CASE("cuda parity: views and their backward") {
  SANF_SKIP_WITHOUT_CUDA();
  const Tensor x = rin({4, 6, 5}, 4);
  check_parity_both("reshape", [](const V& v) { return mul(reshape(v[0], {6, -1}), 1.5); }, {x});
  check_parity_both("reshape of transpose (copies)", [](const V& v) { return reshape(transpose(v[0], 0, 2), {-1}); },
                    {x});
  check_parity_both("flatten", [](const V& v) { return mul(flatten(v[0], 1), 2.0); }, {x});
  check_parity_both("transpose", [](const V& v) { return mul(transpose(v[0], 0, 2), 2.0); }, {x});
  check_parity_both("permute", [](const V& v) { return mul(permute(v[0], {1, 2, 0}), 2.0); }, {x});
  check_parity_both("narrow", [](const V& v) { return mul(narrow(v[0], 1, 2, 3), 2.0); }, {x});
  check_parity_both("select", [](const V& v) { return mul(select(v[0], 2, 4), 2.0); }, {x});
  check_parity_both("expand", [](const V& v) { return mul(expand(unsqueeze(v[0], 1), {4, 3, 6, 5}), 2.0); }, {x});
  check_parity_both("unsqueeze/squeeze", [](const V& v) { return mul(squeeze(unsqueeze(v[0], 3), 3), 2.0); }, {x});
}

namespace {
void binary_cases(const char* name, Tensor (*op)(const Tensor&, const Tensor&)) {
  const std::string n = name;
  // b is kept away from 0 (for div).
  check_parity_both(n + " same shape", [op](const V& v) { return op(v[0], v[1]); },
                    {rin({33, 65}, 10), rin({33, 65}, 11, 0.5, 2.0)});
  check_parity_both(n + " broadcast row", [op](const V& v) { return op(v[0], v[1]); },
                    {rin({2, 3, 40}, 12), rin({40}, 13, 0.5, 2.0)});
  check_parity_both(n + " broadcast middle", [op](const V& v) { return op(v[0], v[1]); },
                    {rin({2, 3, 4}, 14), rin({2, 1, 4}, 15, 0.5, 2.0)});
  check_parity_both(n + " broadcast first operand", [op](const V& v) { return op(v[1], v[0]); },
                    {rin({2, 3, 4}, 16, 0.5, 2.0), rin({3, 1}, 17, 0.5, 2.0)});
  check_parity_both(n + " outer (both broadcast)", [op](const V& v) { return op(v[0], v[1]); },
                    {rin({30, 1}, 18), rin({1, 40}, 19, 0.5, 2.0)});
  check_parity_both(n + " transposed and narrowed views",
                    [op](const V& v) { return op(transpose(v[0], 0, 1), narrow(v[1], 1, 1, 4)); },
                    {rin({4, 3}, 20), rin({3, 6}, 21, 0.5, 2.0)});
  check_parity(n + " large", [op](const V& v) { return op(v[0], v[1]); },
               {rin({257, 1031}, 22), rin({1031}, 23, 0.5, 2.0)});
  check_parity(n + " scalar-shaped operand", [op](const V& v) { return op(v[0], v[1]); },
               {rin({5, 7}, 24), rin({}, 25, 0.5, 2.0)});
}

void unary_cases(const char* name, Tensor (*op)(const Tensor&), const Tensor& x) {
  const std::string n = name;
  check_parity_both(n, [op](const V& v) { return op(v[0]); }, {x});
  check_parity_both(n + " of transposed view", [op](const V& v) { return op(transpose(v[0], 0, 1)); }, {x});
}

Tensor positive(uint64_t seed) { return rin({37, 29}, seed, 0.3, 2.0); }
}  // namespace

TEST_CASE("cuda parity: add") {
  SANF_SKIP_WITHOUT_CUDA();
  binary_cases("add", add);
}
TEST_CASE("cuda parity: sub") {
  SANF_SKIP_WITHOUT_CUDA();
  binary_cases("sub", sub);
}
TEST_CASE("cuda parity: mul") {
  SANF_SKIP_WITHOUT_CUDA();
  binary_cases("mul", mul);
}
TEST_CASE("cuda parity: div") {
  SANF_SKIP_WITHOUT_CUDA();
  binary_cases("div", div);
}

TEST_CASE("cuda parity: neg") {
  SANF_SKIP_WITHOUT_CUDA();
  unary_cases("neg", neg, rin({37, 29}, 30));
}
TEST_CASE("cuda parity: exp") {
  SANF_SKIP_WITHOUT_CUDA();
  unary_cases("exp", exp, rin({37, 29}, 31));
}
TEST_CASE("cuda parity: log") {
  SANF_SKIP_WITHOUT_CUDA();
  unary_cases("log", log, positive(32));
}
TEST_CASE("cuda parity: sqrt") {
  SANF_SKIP_WITHOUT_CUDA();
  unary_cases("sqrt", sqrt, positive(33));
}
TEST_CASE("cuda parity: atan") {
  SANF_SKIP_WITHOUT_CUDA();
  unary_cases("atan", atan, rin({37, 29}, 34, 2.0));
}
TEST_CASE("cuda parity: tanh") {
  SANF_SKIP_WITHOUT_CUDA();
  unary_cases("tanh", tanh, rin({37, 29}, 35));
}
TEST_CASE("cuda parity: gelu") {
  SANF_SKIP_WITHOUT_CUDA();
  unary_cases("gelu", gelu, rin({37, 29}, 36, 2.0));
}
TEST_CASE("cuda parity: square") {
  SANF_SKIP_WITHOUT_CUDA();
  unary_cases("square", square, rin({37, 29}, 37));
}

TEST_CASE("cuda parity: relu") {
  SANF_SKIP_WITHOUT_CUDA();
  // Away from the kink at 0 (where the two sides may pick different one-sided derivatives of rounding).
  std::vector<double> v = rin({37, 29}, 38).to_vector();
  for (double& e : v) e += e >= 0 ? 0.1 : -0.1;
  unary_cases("relu", relu, Tensor::from_vector(v, {37, 29}, DType::F64));
}

TEST_CASE("cuda parity: pow") {
  SANF_SKIP_WITHOUT_CUDA();
  check_parity_both("pow 3", [](const V& v) { return pow(v[0], 3.0); }, {rin({37, 29}, 40)});
  check_parity_both("pow -1.5", [](const V& v) { return pow(v[0], -1.5); }, {positive(41)});
  check_parity_both("pow 0.5 of transposed view", [](const V& v) { return pow(transpose(v[0], 0, 1), 0.5); },
                    {positive(42)});
}

TEST_CASE("cuda parity: scalar variants (x+s, s-x, x*s, x/s, s/x)") {
  SANF_SKIP_WITHOUT_CUDA();
  const Tensor x = positive(43);
  check_parity_both("add scalar", [](const V& v) { return v[0] + 2.5; }, {x});
  check_parity_both("rsub scalar", [](const V& v) { return 2.5 - v[0]; }, {x});
  check_parity_both("sub scalar", [](const V& v) { return v[0] - 2.5; }, {x});
  check_parity_both("mul scalar", [](const V& v) { return v[0] * -3.0; }, {x});
  check_parity_both("div scalar", [](const V& v) { return v[0] / 4.0; }, {x});
  check_parity_both("rdiv scalar", [](const V& v) { return 4.0 / v[0]; }, {x});
  check_parity_both("operators", [](const V& v) { return (v[0] * v[1] - v[1]) / (v[0] + 1.0) + (-v[1]); },
                    {x, rin({37, 29}, 44)});
}

TEST_CASE("cuda parity: a composite expression (a 2-layer MLP's elementwise part)") {
  SANF_SKIP_WITHOUT_CUDA();
  check_parity_both("gelu(x * w + b) * tanh(x)",
                    [](const V& v) { return mul(gelu(add(mul(v[0], v[1]), v[2])), tanh(v[0])); },
                    {rin({8, 16, 24}, 45), rin({24}, 46), rin({16, 1}, 47)});
}

TEST_CASE("cuda parity: elementwise and copy kernels past the grid cap (a second grid-stride pass)") {
  SANF_SKIP_WITHOUT_CUDA();
  // grid_for (kernels/cuda/common.cuh) caps a grid at 65536 blocks of 256 threads: 2^24 = 16,777,216
  // threads. 4099 x 5003 = 20,507,297 elements, so the threads with i < 3,730,081 take a second element in
  // their grid-stride loop. Every result lands in a buffer uploaded full of NaN (by cudaMemcpy, no kernel),
  // so an element the loop skips stays NaN; the values are multiples of 1/64 below 160, so every op here is
  // exact and the CPU's result is the expected one bit for bit.
  const int64_t R = 4099, C = 5003, n = R * C;
  constexpr int64_t kGridThreads = int64_t(65536) * 256;
  REQUIRE(n > kGridThreads);
  std::vector<double> xv(static_cast<size_t>(n)), rv(static_cast<size_t>(C));
  for (int64_t i = 0; i < n; ++i) xv[size_t(i)] = double((i * 7919) % 10007) / 64.0 - 78.0;
  for (int64_t j = 0; j < C; ++j) rv[size_t(j)] = double((j * 31) % 97) / 8.0;
  const Tensor xc = Tensor::from_vector(xv, {R, C}, DType::F32), rc = Tensor::from_vector(rv, {C}, DType::F32);
  const Tensor yc = Tensor::from_vector(std::vector<double>(xv.rbegin(), xv.rend()), {R, C}, DType::F32);
  xv.clear(), xv.shrink_to_fit();
  const Tensor xg = xc.copy_to_device(Device::CUDA), yg = yc.copy_to_device(Device::CUDA),
               rg = rc.copy_to_device(Device::CUDA);
  auto poisoned = [](const Shape& shape, DType dt) { return full(shape, NAN, dt).copy_to_device(Device::CUDA); };

  {  // fill
    Tensor g = poisoned({n}, DType::F32);
    kernels::fill(g, 2.5);
    expect_equal("fill", g, full({n}, 2.5));
  }
  {  // unary (x * -1.5) and its backward (dy * -1.5)
    Tensor oc = Tensor::empty({R, C}), og = poisoned({R, C}, DType::F32);
    kernels::unary(kernels::UnaryOp::MulScalar, xc, oc, -1.5);
    kernels::unary(kernels::UnaryOp::MulScalar, xg, og, -1.5);
    expect_equal("unary", og, oc);
    Tensor dc = Tensor::empty({R, C}), dg = poisoned({R, C}, DType::F32);
    kernels::unary_backward(kernels::UnaryOp::MulScalar, xc, oc, yc, dc, -1.5);
    kernels::unary_backward(kernels::UnaryOp::MulScalar, xg, og, yg, dg, -1.5);
    expect_equal("unary backward", dg, dc);
  }
  {  // binary, both dense (x + y), and strided (x - row, the row broadcast with stride 0)
    Tensor oc = Tensor::empty({R, C}), og = poisoned({R, C}, DType::F32);
    kernels::binary(kernels::BinaryOp::Add, xc, yc, oc);
    kernels::binary(kernels::BinaryOp::Add, xg, yg, og);
    expect_equal("binary dense", og, oc);
    Tensor sc = Tensor::empty({R, C}), sg = poisoned({R, C}, DType::F32);
    kernels::binary(kernels::BinaryOp::Sub, xc, expand(rc, {R, C}), sc);
    kernels::binary(kernels::BinaryOp::Sub, xg, expand(rg, {R, C}), sg);
    expect_equal("binary strided", sg, sc);
  }
  {  // copy: a transpose (strided source), and conversions to f64 and bf16 (contiguous, but not a memcpy)
    Tensor tc = Tensor::empty({C, R}), tg = poisoned({C, R}, DType::F32);
    kernels::copy(tc, transpose(xc, 0, 1));
    kernels::copy(tg, transpose(xg, 0, 1));
    expect_equal("copy of a transpose", tg, tc);
    for (DType dt : {DType::F64, DType::BF16}) {
      Tensor cc = Tensor::empty({R, C}, dt), cg = poisoned({R, C}, dt);
      kernels::copy(cc, xc);
      kernels::copy(cg, xg);
      expect_equal(std::string("copy to ") + dtype_name(dt), cg, cc);
    }
  }
}

TEST_CASE("cuda parity: a strided copy past 2^32 elements takes the 64-bit index path and stays right") {
  SANF_SKIP_WITHOUT_CUDA();
  // Copies and binary ops index in 32 bits when a layout allows (layout_fits_32, kernels/cuda/common.cuh).
  // (4, 2^30 + 5) bf16 is 2^32 + 20 elements (8 GiB): its transposed copy must take the 64-bit path, and a
  // 32-bit index would wrap for the last elements, so they are checked against the source.
  const int64_t R = 4, C = (int64_t(1) << 30) + 5;
  Tensor x, y;
  try {
    Generator gen(7);
    x = to(randn({R, C}, DType::F32, Device::CUDA, &gen), DType::BF16);
    y = contiguous(transpose(x, 0, 1));  // (C, R)
  } catch (const Error& e) {  // a GPU with less memory than this takes (about 34 GiB at the peak)
    MESSAGE("SKIPPED: ", e.what());
    return;
  }
  auto at = [](const Tensor& t, int64_t i, int64_t j) {
    return to(narrow(narrow(t, 0, i, 1), 1, j, 1), Device::CPU).to_vector()[0];
  };
  for (int64_t c : {int64_t(0), int64_t(1) << 29, (int64_t(1) << 30) - 1, C - 2, C - 1})
    for (int64_t r = 0; r < R; ++r) {
      INFO("c ", c, " r ", r);
      CHECK(at(y, c, r) == at(x, r, c));
    }
}

TEST_CASE("cuda parity: a broadcasting binary op past 2^32 elements takes the 64-bit index path") {
  SANF_SKIP_WITHOUT_CUDA();
  // a (5, 1) + b (1, 2^30 + 7): 5 * 2^30 + 35 outputs (21.5 GiB of f32), broadcast layouts (stride 0), so
  // binary_strided_kernel runs; with 32-bit indices the outputs past 2^32 would wrap onto the first ones.
  const int64_t R = 5, C = (int64_t(1) << 30) + 7;
  Tensor a, b, y;
  try {
    a = Tensor::from_vector({1, 2, 3, 4, 5}, {R, 1}, DType::F32).copy_to_device(Device::CUDA);
    b = arange(C, DType::F32, Device::CUDA);  // exact in f32 up to 2^24, then every value still distinct per row
    y = add(a, reshape(b, {1, C}));
  } catch (const Error& e) {  // a GPU with less memory than this takes
    MESSAGE("SKIPPED: ", e.what());
    return;
  }
  const std::vector<double> bv = to(narrow(b, 0, C - 3, 3), Device::CPU).to_vector();
  for (int64_t r = 0; r < R; ++r) {
    INFO("r ", r);
    const std::vector<double> first = to(narrow(narrow(y, 0, r, 1), 1, 0, 2), Device::CPU).to_vector();
    const std::vector<double> last = to(narrow(narrow(y, 0, r, 1), 1, C - 3, 3), Device::CPU).to_vector();
    CHECK(first == std::vector<double>{double(r + 1), double(r + 2)});
    for (int k = 0; k < 3; ++k) CHECK(last[size_t(k)] == double(float(double(r + 1) + bv[size_t(k)])));
  }
}
