// tests/kernels/test_nn_kernels.cpp: the neural-network kernels (softmax, layer norm, gather / scatter-add,
// token pooling, the multi-tensor sum of squares) and the join / patchify ops, by value, against references
// written out in the test.
//
// Sizes come in two kinds: small ones, and ones above the kernels' OpenMP thresholds, so both the serial
// and the parallel paths are checked. The f32 backward kernels are checked against the f64 ones (which the
// finite-difference tests in tests/autograd/test_gradcheck_nn_ops.cpp check against the math).
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "autograd/ops.h"
#include "kernels/reduce.h"
#include "tests/testing/gradcheck.h"

using namespace sanf;
using namespace sanf::testing;
using Vec = std::vector<double>;

namespace {
Tensor indices(const Vec& v) { return Tensor::from_vector(v, {int64_t(v.size())}, DType::I64); }

// Tolerances of a result computed in dt against a double reference.
double rtol_of(DType dt) { return dt == DType::F32 ? 1e-5 : 1e-12; }
double atol_of(DType dt) { return dt == DType::F32 ? 1e-6 : 1e-13; }

// The gradient of sum(f(x) * W) w.r.t. x, computed in dtype dt (x and W given in f64).
Tensor grad_in(DType dt, const std::function<Tensor(const Tensor&)>& f, const Tensor& x64, const Tensor& w64) {
  Tensor x = detach(to(x64, dt)).set_requires_grad(true);  // detach: for f64, to() returns x64 itself
  backward(sum(mul(f(x), to(w64, dt))));
  return x.grad();
}

// f32 and f64 gradients of the same function agree (the f32 backward path against the checked f64 one).
void check_f32_backward(const std::function<Tensor(const Tensor&)>& f, const Tensor& x64, uint64_t seed) {
  Tensor w = rnd(f(x64).shape(), seed);
  Tensor g32 = grad_in(DType::F32, f, x64, w), g64 = grad_in(DType::F64, f, x64, w);
  CHECK(g32.dtype() == DType::F32);
  SANF_CHECK_CLOSE(g32, g64, 1e-4, 1e-5);
}

// Start and end (exclusive) of adaptive-pooling cell i when G positions are pooled into g cells, in PyTorch's
// floating-point formulation.
int64_t cell_start(int64_t i, int64_t G, int64_t g) { return int64_t(std::floor(double(i * G) / double(g))); }
int64_t cell_end(int64_t i, int64_t G, int64_t g) { return int64_t(std::ceil(double((i + 1) * G) / double(g))); }
}  // namespace

TEST_CASE("softmax: rows sum to 1 and match exp / sum") {
  struct Case {
    int64_t rows, cols;
  };
  for (Case c : {Case{4, 7}, Case{300, 200}}) {
    for (DType dt : {DType::F32, DType::F64}) {
      Tensor x64 = rnd({c.rows, c.cols}, 1, 3.0);
      Tensor x = to(x64, dt);
      Vec xv = x.to_vector(), y = softmax(x, -1).to_vector(), ly = log_softmax(x, 1).to_vector();
      Vec want(xv.size()), want_log(xv.size());
      for (int64_t r = 0; r < c.rows; ++r) {
        double s = 0;
        for (int64_t j = 0; j < c.cols; ++j) s += std::exp(xv[size_t(r * c.cols + j)]);
        for (int64_t j = 0; j < c.cols; ++j) {
          size_t k = size_t(r * c.cols + j);
          want[k] = std::exp(xv[k]) / s;
          want_log[k] = xv[k] - std::log(s);
        }
      }
      for (int64_t r = 0; r < c.rows; ++r) {
        double s = 0;
        for (int64_t j = 0; j < c.cols; ++j) s += y[size_t(r * c.cols + j)];
        CHECK(s == doctest::Approx(1.0).epsilon(rtol_of(dt) * 10));
      }
      SANF_CHECK_CLOSE(Tensor::from_vector(y, {c.rows, c.cols}, DType::F64),
                       Tensor::from_vector(want, {c.rows, c.cols}, DType::F64), rtol_of(dt), atol_of(dt));
      SANF_CHECK_CLOSE(Tensor::from_vector(ly, {c.rows, c.cols}, DType::F64),
                       Tensor::from_vector(want_log, {c.rows, c.cols}, DType::F64), rtol_of(dt), atol_of(dt));
      // Over dim 0: the same as over the last dim of the transpose.
      SANF_CHECK_CLOSE(softmax(x, 0), transpose(softmax(transpose(x, 0, 1), -1), 0, 1), rtol_of(dt), atol_of(dt));
    }
  }
}

TEST_CASE("softmax: huge logits do not overflow") {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor x = Tensor::from_vector({1000, 1001, 1002, -1000, -1001, -1002}, {2, 3}, dt);
    const double s = 1 + std::exp(-1.0) + std::exp(-2.0);
    Vec want = {std::exp(-2.0) / s, std::exp(-1.0) / s, 1 / s, 1 / s, std::exp(-1.0) / s, std::exp(-2.0) / s};
    SANF_CHECK_CLOSE(softmax(x, 1), Tensor::from_vector(want, {2, 3}, DType::F64), rtol_of(dt), atol_of(dt));
    Vec want_log(want.size());
    for (size_t i = 0; i < want.size(); ++i) want_log[i] = std::log(want[i]);
    SANF_CHECK_CLOSE(log_softmax(x, 1), Tensor::from_vector(want_log, {2, 3}, DType::F64), rtol_of(dt), atol_of(dt));
  }
}

TEST_CASE("softmax backward: f32 matches f64, serial and parallel") {
  for (Shape s : {Shape{3, 5}, Shape{300, 200}}) {
    Tensor x = rnd(s, 2, 2.0);
    check_f32_backward([](const Tensor& t) { return softmax(t, -1); }, x, 3);
    check_f32_backward([](const Tensor& t) { return log_softmax(t, -1); }, x, 4);
    check_f32_backward([](const Tensor& t) { return softmax(t, 0); }, x, 5);
  }
}

TEST_CASE("layer_norm: matches a direct mean / variance computation") {
  struct Case {
    int64_t rows, cols;
  };
  for (Case c : {Case{3, 5}, Case{200, 256}}) {
    for (DType dt : {DType::F32, DType::F64}) {
      const double eps = 1e-5;
      Tensor x = to(rnd({c.rows, c.cols}, 11, 2.0, 3.0), dt);
      Tensor w = to(rnd({c.cols}, 12, 0.5, 1.0), dt), b = to(rnd({c.cols}, 13), dt);
      Vec xv = x.to_vector(), wv = w.to_vector(), bv = b.to_vector(), want(xv.size());
      for (int64_t r = 0; r < c.rows; ++r) {
        const double* row = xv.data() + r * c.cols;
        double mean = 0, var = 0;
        for (int64_t j = 0; j < c.cols; ++j) mean += row[j] / double(c.cols);
        for (int64_t j = 0; j < c.cols; ++j) var += (row[j] - mean) * (row[j] - mean) / double(c.cols);
        for (int64_t j = 0; j < c.cols; ++j)
          want[size_t(r * c.cols + j)] = (row[j] - mean) / std::sqrt(var + eps) * wv[size_t(j)] + bv[size_t(j)];
      }
      SANF_CHECK_CLOSE(layer_norm(x, w, b, eps), Tensor::from_vector(want, {c.rows, c.cols}, DType::F64),
                       rtol_of(dt) * 10, atol_of(dt) * 10);
      // Leading dims only count rows: a 3-D x gives the same values.
      if (c.rows % 2 == 0)
        CHECK(layer_norm(reshape(x, {2, c.rows / 2, c.cols}), w, b, eps).to_vector() ==
              layer_norm(x, w, b, eps).to_vector());
    }
  }
}

TEST_CASE("layer_norm backward: dbias and dweight are row sums, and f32 matches f64") {
  for (Shape s : {Shape{3, 5}, Shape{200, 256}}) {
    const int64_t rows = s[0], cols = s[1];
    Tensor x = rnd(s, 21, 2.0, 1.0), dy = rnd(s, 22);
    for (DType dt : {DType::F32, DType::F64}) {
      Tensor xt = detach(to(x, dt)).set_requires_grad(true);
      Tensor w = detach(to(rnd({cols}, 23, 0.5, 1.0), dt)).set_requires_grad(true);
      Tensor b = detach(to(rnd({cols}, 24), dt)).set_requires_grad(true);
      backward(sum(mul(layer_norm(xt, w, b, 1e-5), to(dy, dt))));
      // dbias_j = sum_r dy[r, j];  dweight_j = sum_r dy[r, j] * xhat[r, j], xhat from the f64 statistics.
      Vec xv = x.to_vector(), dyv = dy.to_vector(), db(size_t(cols), 0.0), dw(size_t(cols), 0.0);
      for (int64_t r = 0; r < rows; ++r) {
        const double* row = xv.data() + r * cols;
        double mean = 0, var = 0;
        for (int64_t j = 0; j < cols; ++j) mean += row[j] / double(cols);
        for (int64_t j = 0; j < cols; ++j) var += (row[j] - mean) * (row[j] - mean) / double(cols);
        for (int64_t j = 0; j < cols; ++j) {
          db[size_t(j)] += dyv[size_t(r * cols + j)];
          dw[size_t(j)] += dyv[size_t(r * cols + j)] * (row[j] - mean) / std::sqrt(var + 1e-5);
        }
      }
      const double rtol = dt == DType::F32 ? 1e-4 : 1e-11, atol = dt == DType::F32 ? 1e-4 : 1e-11;
      SANF_CHECK_CLOSE(b.grad(), Tensor::from_vector(db, {cols}, DType::F64), rtol, atol);
      SANF_CHECK_CLOSE(w.grad(), Tensor::from_vector(dw, {cols}, DType::F64), rtol, atol);
    }
    Tensor w = rnd({cols}, 23, 0.5, 1.0), b = rnd({cols}, 24);
    check_f32_backward([&](const Tensor& t) { return layer_norm(t, to(w, t.dtype()), to(b, t.dtype()), 1e-5); }, x, 25);
  }
}

TEST_CASE("index_select and its scatter-add backward: against loops") {
  struct Case {
    int64_t M, S, I;
    Vec idx;
  };
  Vec many;
  for (int k = 0; k < 40; ++k) many.push_back(double((k * 7) % 10));  // every row of 10 picked four times
  for (const Case& c : {Case{2, 5, 3, {4, 0, 4, 2}}, Case{1, 6, 1, {5, 5, 0}}, Case{2, 10, 600, many}}) {
    const int64_t n = int64_t(c.idx.size());
    Tensor x = rnd({c.M, c.S, c.I}, 31);
    Tensor out = index_select(x, 1, indices(c.idx));
    REQUIRE(out.shape() == Shape{c.M, n, c.I});
    Vec xv = x.to_vector(), ov = out.to_vector();
    bool same = true;
    for (int64_t m = 0; m < c.M; ++m)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t i = 0; i < c.I; ++i)
          same =
              same && ov[size_t((m * n + j) * c.I + i)] == xv[size_t((m * c.S + int64_t(c.idx[size_t(j)])) * c.I + i)];
    CHECK(same);
    // Backward: dx[m, idx[j], i] += dy[m, j, i].
    Tensor dy = rnd(out.shape(), 32);
    Tensor dx = grad_in(
        DType::F64, [&](const Tensor& t) { return index_select(t, 1, indices(c.idx)); }, x, dy);
    Vec dyv = dy.to_vector(), want(size_t(c.M * c.S * c.I), 0.0);
    for (int64_t m = 0; m < c.M; ++m)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t i = 0; i < c.I; ++i)
          want[size_t((m * c.S + int64_t(c.idx[size_t(j)])) * c.I + i)] += dyv[size_t((m * n + j) * c.I + i)];
    SANF_CHECK_CLOSE(dx, Tensor::from_vector(want, x.shape(), DType::F64), 1e-12, 1e-12);
    check_f32_backward([&](const Tensor& t) { return index_select(t, 1, indices(c.idx)); }, x, 33);
  }
}

TEST_CASE("adaptive_avg_pool_tokens: against a naive loop, forward and backward") {
  struct Case {
    int64_t B, Gh, Gw, gh, gw, D;
  };
  for (Case c : {Case{2, 4, 4, 2, 2, 3}, Case{1, 5, 5, 3, 3, 2}, Case{2, 6, 4, 3, 2, 2}, Case{1, 3, 3, 5, 4, 2},
                 Case{2, 14, 14, 3, 3, 200}, Case{1, 4, 4, 1, 1, 3}}) {
    INFO("pool ", c.Gh, "x", c.Gw, " -> ", c.gh, "x", c.gw);
    Tensor x = rnd({c.B, c.Gh * c.Gw, c.D}, 41);
    Tensor y = adaptive_avg_pool_tokens(x, c.Gh, c.Gw, c.gh, c.gw);
    REQUIRE(y.shape() == Shape{c.B, c.gh * c.gw, c.D});
    Tensor dy = rnd(y.shape(), 42);
    Vec xv = x.to_vector(), dyv = dy.to_vector();
    Vec want(size_t(y.numel()), 0.0), want_dx(xv.size(), 0.0);
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t oy = 0; oy < c.gh; ++oy)
        for (int64_t ox = 0; ox < c.gw; ++ox) {
          const int64_t y0 = cell_start(oy, c.Gh, c.gh), y1 = cell_end(oy, c.Gh, c.gh);
          const int64_t x0 = cell_start(ox, c.Gw, c.gw), x1 = cell_end(ox, c.Gw, c.gw);
          const double count = double((y1 - y0) * (x1 - x0));
          const int64_t cell = (b * c.gh + oy) * c.gw + ox;
          for (int64_t iy = y0; iy < y1; ++iy)
            for (int64_t ix = x0; ix < x1; ++ix)
              for (int64_t d = 0; d < c.D; ++d) {
                const size_t tok = size_t(((b * c.Gh + iy) * c.Gw + ix) * c.D + d);
                want[size_t(cell * c.D + d)] += xv[tok] / count;
                want_dx[tok] += dyv[size_t(cell * c.D + d)] / count;
              }
        }
    SANF_CHECK_CLOSE(y, Tensor::from_vector(want, y.shape(), DType::F64), 1e-12, 1e-12);
    Tensor dx = grad_in(
        DType::F64, [&](const Tensor& t) { return adaptive_avg_pool_tokens(t, c.Gh, c.Gw, c.gh, c.gw); }, x, dy);
    SANF_CHECK_CLOSE(dx, Tensor::from_vector(want_dx, x.shape(), DType::F64), 1e-12, 1e-12);
    check_f32_backward([&](const Tensor& t) { return adaptive_avg_pool_tokens(t, c.Gh, c.Gw, c.gh, c.gw); }, x, 43);
  }
}

TEST_CASE("concat, split and chunk: values") {
  Tensor a = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {2, 3}, DType::F32);
  Tensor b = Tensor::from_vector({6, 7, 8, 9}, {2, 2}, DType::F32);
  Tensor bt = transpose(b, 0, 1);  // non-contiguous: (6, 8), (7, 9)
  CHECK(concat({a, bt}, 1).to_vector() == Vec{0, 1, 2, 6, 8, 3, 4, 5, 7, 9});
  CHECK(concat({a, narrow(a, 0, 1, 1)}, 0).to_vector() == Vec{0, 1, 2, 3, 4, 5, 3, 4, 5});
  CHECK(concat({a}, -1).to_vector() == a.to_vector());
  CHECK(concat({zeros({0, 3}), a}, 0).to_vector() == a.to_vector());

  std::vector<Tensor> parts = split(a, {1, 0, 2}, 1);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].to_vector() == Vec{0, 3});
  CHECK(parts[1].shape() == Shape{2, 0});
  CHECK(parts[2].to_vector() == Vec{1, 2, 4, 5});

  auto sizes = [](const std::vector<Tensor>& ts, int dim) {
    std::vector<int64_t> s;
    for (const Tensor& t : ts) s.push_back(t.size(dim));
    return s;
  };
  Tensor x = zeros({5, 4});
  CHECK(sizes(chunk(x, 4, 0), 0) == std::vector<int64_t>{2, 2, 1});  // fewer than 4 pieces, as PyTorch
  CHECK(sizes(chunk(x, 2, 0), 0) == std::vector<int64_t>{3, 2});
  CHECK(sizes(chunk(x, 4, 1), 1) == std::vector<int64_t>{1, 1, 1, 1});
  CHECK(sizes(chunk(x, 7, 1), 1) == std::vector<int64_t>{1, 1, 1, 1});
  CHECK(sizes(chunk(zeros({0, 2}), 3, 0), 0) == std::vector<int64_t>{0});
  CHECK(chunk(a, 3, 1)[2].to_vector() == Vec{2, 5});
}

TEST_CASE("patchify: a stride-p convolution equals patchify + linear") {
  const int64_t B = 2, C = 3, H = 8, W = 12, p = 4, D = 5, Hp = H / p, Wp = W / p, K = C * p * p;
  Tensor img = rnd({B, C, H, W}, 51), weight = rnd({D, C, p, p}, 52), bias = rnd({D}, 53);
  Vec iv = img.to_vector(), wv = weight.to_vector(), bv = bias.to_vector();
  auto at_img = [&](int64_t b, int64_t c, int64_t y, int64_t x) { return iv[size_t(((b * C + c) * H + y) * W + x)]; };

  // The convolution, directly: conv[b, o, py, px] = bias[o] + sum_{c, ky, kx} w[o, c, ky, kx] img[b, c, py*p+ky,
  // px*p+kx].
  Vec conv(size_t(B * D * Hp * Wp));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < D; ++o)
      for (int64_t py = 0; py < Hp; ++py)
        for (int64_t px = 0; px < Wp; ++px) {
          double s = bv[size_t(o)];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t ky = 0; ky < p; ++ky)
              for (int64_t kx = 0; kx < p; ++kx)
                s += wv[size_t(((o * C + c) * p + ky) * p + kx)] * at_img(b, c, py * p + ky, px * p + kx);
          conv[size_t(((b * D + o) * Hp + py) * Wp + px)] = s;
        }

  // patchify, then linear with the weight flattened to (D, C*p*p): token py*Wp + px holds conv[b, :, py, px].
  Tensor patches = patchify(img, p);
  REQUIRE(patches.shape() == Shape{B, Hp * Wp, K});
  Tensor embedded = linear(patches, reshape(weight, {D, K}), bias);  // (B, Hp*Wp, D)
  Tensor conv_tokens = Tensor::from_vector(conv, {B, D, Hp * Wp}, DType::F64);
  SANF_CHECK_CLOSE(embedded, transpose(conv_tokens, 1, 2), 1e-12, 1e-12);
  Vec pv = patches.to_vector();

  // The patch layout itself: patches[b, py*Wp + px, (c*p + ky)*p + kx] = img[b, c, py*p + ky, px*p + kx].
  bool same = true;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t py = 0; py < Hp; ++py)
      for (int64_t px = 0; px < Wp; ++px)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t ky = 0; ky < p; ++ky)
            for (int64_t kx = 0; kx < p; ++kx)
              same = same && pv[size_t((b * Hp * Wp + py * Wp + px) * K + (c * p + ky) * p + kx)] ==
                                 at_img(b, c, py * p + ky, px * p + kx);
  CHECK(same);
}

TEST_CASE("sum_squares: many tensors in one call, against a double loop, whatever the thread count") {
  // Sizes across the chunk boundary (kSquaresChunk = 65,536) and an empty tensor among them.
  for (DType dt : {DType::F32, DType::F64}) {
    INFO(std::string(dtype_name(dt)));
    std::vector<Tensor> ts;
    double want = 0;
    uint64_t seed = 11;
    for (int64_t n : {int64_t(1), int64_t(0), int64_t(65535), int64_t(65536), int64_t(65537), int64_t(200001)}) {
      const Tensor t = to(rnd({n}, seed++), dt);
      for (double v : t.to_vector()) want += v * v;
      ts.push_back(t);
    }
    const uint64_t calls = kernels::kernel_calls();
    const double got = kernels::sum_squares(ts);
    CHECK(kernels::kernel_calls() - calls == 1);  // one kernel call for all the tensors
    CHECK(std::fabs(got - want) <= 1e-12 * want);
    // The chunks, not the threads, fix the order of the sums: the same bits on one thread.
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const double serial = kernels::sum_squares(ts);
    omp_set_num_threads(threads);
    CHECK(serial == got);
    CHECK(kernels::sum_squares({}) == 0.0);
    CHECK(kernels::sum_squares({ts[1]}) == 0.0);  // only an empty tensor
  }
  // inf and NaN anywhere show in the result (a gradient check relies on it).
  Tensor a = to(rnd({70000}, 5), DType::F32), b = to(rnd({3}, 6), DType::F32);
  a.data<float>()[69999] = INFINITY;
  CHECK(std::isinf(kernels::sum_squares({b, a})));
  a.data<float>()[10] = NAN;
  CHECK(std::isnan(kernels::sum_squares({b, a})));
  // Mixed dtypes, non-contiguous tensors and undefined ones are refused, naming what was given.
  CHECK_THROWS_WITH(kernels::sum_squares({b, to(b, DType::F64)}), doctest::Contains("one float dtype"));
  CHECK_THROWS_WITH(kernels::sum_squares({transpose(to(rnd({3, 4}, 7), DType::F32), 0, 1)}),
                    doctest::Contains("contiguous"));
  CHECK_THROWS(kernels::sum_squares({b, Tensor()}));
}
