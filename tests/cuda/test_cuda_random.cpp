// tests/cuda/test_cuda_random.cpp: random tensors drawn on the device with cuRAND (kernels/random.h).
//
// Reproducible for a seed (bitwise), independent across successive draws, one value of the sanf Generator
// consumed per draw, the right distributions over a million values (normal: mean 0, std 1; uniform: mean
// 1/2, variance 1/12, every value in [0, 1)), every dtype and odd sizes, and NOT the CPU's stream. Model
// initialisation still gives the same weights on both devices (it draws on the host).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/ops.h"
#include "kernels/random.h"
#include "tests/cuda/parity.h"
#include "vit/vit.h"

using namespace sanf;
using namespace sanf::cuda_testing;

namespace {
struct Moments {
  double mean, std, min, max;
};
Moments moments(const Tensor& t) {
  const std::vector<double> v = t.to_vector();
  double s = 0, s2 = 0, lo = INFINITY, hi = -INFINITY;
  for (double x : v) s += x, s2 += x * x, lo = std::min(lo, x), hi = std::max(hi, x);
  const double m = s / double(v.size());
  return {m, std::sqrt(s2 / double(v.size()) - m * m), lo, hi};
}
bool all_finite(const Tensor& t) {
  for (double x : t.to_vector())
    if (!std::isfinite(x)) return false;
  return true;
}
}  // namespace

TEST_CASE("cuda random: a seed reproduces device randn and rand bit for bit, and successive draws differ") {
  SANF_SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::F32, DType::F64}) {
    INFO("dtype ", dtype_name(dt));
    Generator a(42), b(42);
    const Tensor x1 = randn({1000, 33}, dt, Device::CUDA, &a), x2 = randn({1000, 33}, dt, Device::CUDA, &b);
    CHECK(x1.device() == Device::CUDA);
    expect_equal("randn, same seed", x1, x2);
    const Tensor u1 = rand({4097}, dt, Device::CUDA, &a), u2 = rand({4097}, dt, Device::CUDA, &b);
    expect_equal("rand, same seed", u1, u2);
    // The next draw from the same generator is a different stream.
    CHECK(randn({1000, 33}, dt, Device::CUDA, &a).to_vector() != x1.to_vector());
    // Another seed, other values.
    Generator c(43);
    CHECK(randn({1000, 33}, dt, Device::CUDA, &c).to_vector() != x1.to_vector());
  }
}

TEST_CASE("cuda random: each device draw takes exactly one value of the sanf Generator") {
  SANF_SKIP_WITHOUT_CUDA();
  Generator a(7), b(7);
  randn({12345}, DType::F32, Device::CUDA, &a);
  rand({3}, DType::F64, Device::CUDA, &a);
  b.next_u64();
  b.next_u64();
  CHECK(a.next_u64() == b.next_u64());
}

TEST_CASE("cuda random: randn over 1M values has mean 0 and std 1, rand is uniform from 0 up to (not including) 1") {
  SANF_SKIP_WITHOUT_CUDA();
  const int64_t n = 1 << 20;
  for (DType dt : {DType::F32, DType::F64}) {
    INFO("dtype ", dtype_name(dt));
    Generator g(2024);
    // Standard errors over 1M draws: mean 1e-3, std ~7e-4. Tolerances are 5 of them.
    const Moments z = moments(randn({n}, dt, Device::CUDA, &g));
    CHECK(std::fabs(z.mean) < 5e-3);
    CHECK(std::fabs(z.std - 1.0) < 5e-3);
    CHECK(z.min < -4.0);  // the tails are there (P(|z| > 4) ~ 6e-5: ~60 of 1M)
    CHECK(z.max > 4.0);
    const Tensor u = rand({n}, dt, Device::CUDA, &g);
    const Moments m = moments(u);
    CHECK(std::fabs(m.mean - 0.5) < 5 * 2.9e-4);                 // std error sqrt(1/12 / n)
    CHECK(std::fabs(m.std - std::sqrt(1.0 / 12)) < 5 * 2.6e-4);  // ~ sqrt(1/180 / n) / (2 std)
    CHECK(m.min >= 0.0);
    CHECK(m.max < 1.0);
    CHECK(m.min < 1e-4);  // both ends are reached
    CHECK(m.max > 1 - 1e-4);
  }
}

TEST_CASE("cuda random: odd sizes, other dtypes and empty tensors") {
  SANF_SKIP_WITHOUT_CUDA();
  // Normals come in pairs from cuRAND: odd counts go through a scratch block.
  for (int64_t n : {1, 3, 1001}) {
    INFO("n = ", n);
    Generator g(n);
    const Tensor z = randn({n}, DType::F32, Device::CUDA, &g);
    CHECK(z.numel() == n);
    CHECK(all_finite(z));
    const Tensor u = rand({n}, DType::F64, Device::CUDA, &g);
    CHECK(moments(u).min >= 0.0);
    CHECK(moments(u).max < 1.0);
  }
  // bf16 / f16 are drawn in f32 and rounded: the same numbers as the f32 draw of that seed, converted.
  for (DType dt : {DType::BF16, DType::F16}) {
    INFO("dtype ", dtype_name(dt));
    for (int64_t n : {64, 65}) {
      Generator a(9), b(9);
      expect_equal("randn", randn({n}, dt, Device::CUDA, &a), to(randn({n}, DType::F32, Device::CUDA, &b), dt));
      // Uniforms are capped first at the dtype's largest value below 1 (kernels/random.h).
      std::vector<double> capped = rand({n}, DType::F32, Device::CUDA, &b).to_vector();
      for (double& x : capped) x = std::min(x, kernels::uniform_cap(dt));
      expect_equal("rand", rand({n}, dt, Device::CUDA, &a), Tensor::from_vector(capped, {n}, dt));
    }
  }
  // Enough bf16 draws that some land within half a unit of 1: all stay below 1.
  Generator gb(5);
  CHECK(moments(rand({20000}, DType::BF16, Device::CUDA, &gb)).max == 1.0 - 0x1p-8);
  Generator g(1);
  CHECK(randn({0, 7}, DType::F32, Device::CUDA, &g).numel() == 0);
  CHECK(rand({0}, DType::F64, Device::CUDA, &g).numel() == 0);
}

TEST_CASE("cuda random: the device stream is not the CPU's, but initialisation is the same on both") {
  SANF_SKIP_WITHOUT_CUDA();
  Generator a(5), b(5);
  const std::vector<double> d = randn({256}, DType::F32, Device::CUDA, &a).to_vector();
  const std::vector<double> h = randn({256}, DType::F32, Device::CPU, &b).to_vector();
  size_t same = 0;
  for (size_t i = 0; i < d.size(); ++i) same += d[i] == h[i];
  CHECK(same < 3);  // documented: a seed gives different numbers on the two devices

  // A seeded ViT is the same model on both devices (trunc_normal and cls_token are drawn on the host).
  vit::ViTConfig c;
  c.name = "vit-t";
  c.image_size = 8, c.patch_size = 4, c.dim = 16, c.depth = 1, c.heads = 2;
  Generator g1(3), g2(3);
  vit::VisionTransformer on_cpu(c, {&g1}), on_cuda(c, {&g2, DType::F32, Device::CUDA});
  const auto pc = on_cpu.named_parameters(), pg = on_cuda.named_parameters();
  REQUIRE(pc.size() == pg.size());
  for (size_t i = 0; i < pc.size(); ++i) {
    CHECK(pg[i].second->device() == Device::CUDA);
    expect_equal(pc[i].first, *pg[i].second, *pc[i].second);
  }
}
