// tests/kernels/test_elementwise.cpp: the CPU elementwise and copy kernels against plain element loops.
//
// The kernels run per-op loops inside per-ISA clones (kernels/cpu/elementwise.cpp), split work over threads
// above a size threshold, and coalesce the dims of strided operands (kernels/cpu/loops.h); the copy kernel
// also takes memcpy rows. Each case here is small (the serial path) and large (threaded, several pieces),
// with lengths that are not multiples of the vector width, and the strided / broadcast layouts whose
// coalescing differs. References are element loops over multi-indices with the scalar formulas of
// kernels/elementwise_math.h (the f32 GELU, which uses kernels/cpu/vec_math.h, is checked against f64 in
// tests/kernels/test_vec_math.cpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/rng.h"
#include "kernels/copy.h"
#include "kernels/elementwise_math.h"

using namespace sanf;
using namespace sanf::kernels;

namespace {
template <typename T>
std::vector<T> random_vec(int64_t n, uint64_t seed, double lo = -3.0, double hi = 3.0) {
  Generator gen(seed);
  std::vector<T> v(size_t(std::max<int64_t>(n, 1)));
  for (T& x : v) x = T(lo + (hi - lo) * gen.uniform());
  return v;
}

// Element offset of flat index i (row-major over shape) in a layout.
int64_t offset_of(const Layout& l, int64_t i) {
  int64_t off = 0;
  for (int d = l.ndim - 1; d >= 0; --d) {
    off += (i % l.shape[d]) * l.strides[d];
    i /= l.shape[d];
  }
  return off;
}

// Results computed the same way are equal. A derivative formula that a clone contracts into an FMA
// (tanh's 1 - y^2, GELU's Phi + x phi) may differ by a few rounding errors of its terms, whose size is
// `scale` (|dy| for the backward).
template <typename T>
bool close(T got, T want, bool exact, double scale) {
  if (std::isnan(want)) return std::isnan(got);
  if (exact || std::isinf(want)) return got == want;
  const double eps = std::is_same_v<T, float> ? 0x1p-24 : 0x1p-53;
  return std::fabs(double(got) - double(want)) <= 8 * eps * (std::fabs(double(want)) + scale);
}

bool exact_op(UnaryOp op) {
  return op == UnaryOp::Neg || op == UnaryOp::Relu || op == UnaryOp::AddScalar || op == UnaryOp::MulScalar;
}

template <typename T>
void check_unary(UnaryOp op, int64_t n, double alpha) {
  const DType dt = std::is_same_v<T, float> ? DType::F32 : DType::F64;
  const bool positive = op == UnaryOp::Log || op == UnaryOp::Sqrt || op == UnaryOp::PowScalar;
  std::vector<T> x = random_vec<T>(n, 7 + uint64_t(op), positive ? 0.1 : -3.0, 3.0), y(x.size()),
                 dy = random_vec<T>(n, 99), dx(x.size());
  cpu::unary(op, dt, x.data(), y.data(), n, alpha);
  cpu::unary_backward(op, dt, x.data(), y.data(), dy.data(), dx.data(), n, alpha);
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (op == UnaryOp::Gelu && dt == DType::F32) break;  // test_vec_math.cpp
    const T want = unary_value(op, x[size_t(i)], T(alpha));
    const T dwant = dy[size_t(i)] * unary_derivative(op, x[size_t(i)], y[size_t(i)], T(alpha));
    bad += !close(y[size_t(i)], want, exact_op(op), 0.0) +
           !close(dx[size_t(i)], dwant, exact_op(op), std::fabs(double(dy[size_t(i)])));
  }
  INFO(unary_name(op), " ", dtype_name(dt), " n=", n);
  CHECK(bad == 0);
}

template <typename T>
void check_binary(BinaryOp op, const Shape& shape, const Shape& sa, const Shape& sb, int64_t a_size, int64_t b_size) {
  const DType dt = std::is_same_v<T, float> ? DType::F32 : DType::F64;
  std::vector<T> a = random_vec<T>(a_size, 11), b = random_vec<T>(b_size, 12, 0.5, 3.0);
  const Layout la = make_layout(shape, sa), lb = make_layout(shape, sb);
  const int64_t n = numel(shape);
  std::vector<T> out(size_t(std::max<int64_t>(n, 1)));
  cpu::binary(op, dt, a.data(), la, b.data(), lb, out.data(), n);
  int bad = 0;
  for (int64_t i = 0; i < n; ++i)
    bad += out[size_t(i)] != binary_value(op, a[size_t(offset_of(la, i))], b[size_t(offset_of(lb, i))]);
  INFO(binary_name(op), " ", dtype_name(dt), " shape ", shape_str(shape), " a strides ", shape_str(sa), " b strides ",
       shape_str(sb));
  CHECK(bad == 0);
}

template <typename S, typename D>
void check_copy(const Shape& shape, const Shape& ss, const Shape& ds, int64_t s_size, int64_t d_size) {
  const DType sdt = std::is_same_v<S, float> ? DType::F32 : DType::F64;
  const DType ddt = std::is_same_v<D, float> ? DType::F32 : DType::F64;
  std::vector<S> src = random_vec<S>(s_size, 21);
  std::vector<D> dst(size_t(d_size), D(-7)), want = dst;
  const Layout ls = make_layout(shape, ss), ld = make_layout(shape, ds);
  cpu::copy(sdt, src.data(), ls, ddt, dst.data(), ld);
  for (int64_t i = 0; i < numel(shape); ++i) want[size_t(offset_of(ld, i))] = D(src[size_t(offset_of(ls, i))]);
  INFO("copy ", dtype_name(sdt), " -> ", dtype_name(ddt), " shape ", shape_str(shape), " src strides ", shape_str(ss),
       " dst strides ", shape_str(ds));
  CHECK(dst == want);  // untouched elements keep -7
}
}  // namespace

TEST_CASE("elementwise kernels: every unary op and its backward against the scalar formulas") {
  for (UnaryOp op : {UnaryOp::Neg, UnaryOp::Exp, UnaryOp::Log, UnaryOp::Sqrt, UnaryOp::Atan, UnaryOp::Tanh,
                     UnaryOp::Relu, UnaryOp::Gelu, UnaryOp::AddScalar, UnaryOp::MulScalar, UnaryOp::PowScalar})
    for (int64_t n : {int64_t(1), int64_t(37), int64_t(200003)}) {  // serial, vector remainder, threaded
      const double alpha = op == UnaryOp::PowScalar ? 1.7 : -0.375;
      check_unary<float>(op, n, alpha);
      check_unary<double>(op, n, alpha);
    }
}

TEST_CASE("elementwise kernels: binary ops over contiguous, broadcast and strided layouts") {
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div}) {
    for (int64_t n : {int64_t(45), int64_t(100003)}) {
      check_binary<float>(op, {n}, {1}, {1}, n, n);   // flat
      check_binary<double>(op, {n}, {1}, {0}, n, 1);  // tensor (op) scalar
      check_binary<float>(op, {n}, {0}, {1}, 1, n);   // scalar (op) tensor
    }
    // x + pos_embed: (B, N, D) with (1, N, D) broadcast over B (coalesces to rows of N*D), small and large.
    for (int64_t B : {int64_t(3), int64_t(128)}) {
      check_binary<float>(op, {B, 17, 24}, {17 * 24, 24, 1}, {0, 24, 1}, B * 17 * 24, 17 * 24);
      check_binary<double>(op, {B, 17, 24}, {17 * 24, 24, 1}, {0, 24, 1}, B * 17 * 24, 17 * 24);
    }
    // (R, C) (op) a per-row value (R, 1): inner stride 0 on b.
    check_binary<float>(op, {3001, 13}, {13, 1}, {1, 0}, 3001 * 13, 3001);
    // A transposed view (strided inner dim) with a per-column vector; size-1 dims in the middle.
    check_binary<float>(op, {40, 1, 2003}, {1, 7, 40}, {0, 0, 1}, 40 * 2003, 2003);
    check_binary<double>(op, {5, 7}, {1, 5}, {7, 1}, 35, 35);
    // 0-dim.
    check_binary<float>(op, {}, {}, {}, 1, 1);
  }
}

TEST_CASE("copy kernel: coalesced runs, memcpy rows, strided rows, broadcasts and conversions") {
  // Contiguous both ways: one memcpy (threaded when large).
  check_copy<float, float>({1000003}, {1}, {1}, 1000003, 1000003);
  // A permuted source into a contiguous destination (attention's transpose(o, 1, 2)): memcpy rows of hd.
  for (int64_t B : {int64_t(2), int64_t(64)})
    check_copy<float, float>({B, 65, 3, 64}, {3 * 65 * 64, 64, 65 * 64, 1}, {65 * 3 * 64, 3 * 64, 64, 1},
                             B * 65 * 3 * 64, B * 65 * 3 * 64);
  // q out of the qkv output: (B, H, N, hd) at strides (N*3D, hd, 3D, 1), D = H*hd.
  check_copy<float, float>({32, 3, 65, 64}, {65 * 576, 64, 576, 1}, {3 * 65 * 64, 65 * 64, 64, 1}, 32 * 65 * 576,
                           32 * 3 * 65 * 64);
  // Into a narrowed destination (the concat pattern): rows of 5 in rows of 9.
  check_copy<double, double>({301, 5}, {5, 1}, {9, 1}, 301 * 5, 301 * 9);
  // A bias broadcast over rows (stride-0 source dim), and a transposed source (strided inner loop).
  check_copy<float, float>({3000, 77}, {0, 1}, {77, 1}, 77, 3000 * 77);
  check_copy<double, double>({513, 257}, {1, 513}, {257, 1}, 513 * 257, 513 * 257);
  // Size-1 dims, and dtype conversions with strides.
  check_copy<float, float>({4, 1, 6, 1}, {6, 99, 1, 5}, {6, 6, 1, 1}, 24, 24);
  check_copy<float, double>({300, 301}, {1, 300}, {301, 1}, 300 * 301, 300 * 301);
  check_copy<double, float>({7, 9}, {9, 1}, {1, 7}, 63, 63);
}

TEST_CASE("fill kernel: large and small, every element") {
  for (int64_t n : {int64_t(3), int64_t(300001)}) {
    std::vector<float> v(size_t(n), 1.0f);
    cpu::fill(DType::F32, v.data(), n, -2.5);
    CHECK(std::count(v.begin(), v.end(), -2.5f) == n);
  }
}
