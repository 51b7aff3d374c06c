// kernels/cpu/vec_math.h: f32 exp and GELU (value and derivative) written so that GCC vectorises loops
// over them.
//
// glibc's expf / erff are scalar calls: a loop over them runs one element at a time (std::erf was 12% of a
// ViT forward). The functions here are branch-free (both sides of every case are computed and one is
// selected), use only +, -, *, /, comparisons and integer bit operations, and call nothing, so a loop over
// them becomes AVX2 / AVX-512 code in the SANF_CPU_CLONES kernels (kernels/cpu/loops.h).
//
//   exp_f32(hi, lo) = exp(hi + lo): n = round(s / ln2), r = s - n ln2 (Cody-Waite, two constants; lo is
//     added after the reduction, so hi + lo is never rounded), exp(r) on |r| <= ln2/2 by Cephes' degree-7
//     polynomial, times 2^n made in the exponent bits, in two halves so that results down into the
//     subnormals and up to overflow are rounded once. exp(-inf) = 0, exp(+inf) = inf, NaN stays NaN.
//   gelu_f32(x) = x Phi(x), Phi(x) = (1 + erf(z)) / 2, z = x / sqrt2, with 1 + erf(z) formed as
//     z > 0.9277:       2 - erfc(z)
//     0 <= z <= 0.9277: 1 + erf(z), erf(z) = z + z P(z^2) (N. Juffa's vectorisable erff polynomial)
//     z < 0:            erfc(|z|)  (no 1 - (1 - ...) cancellation: the textbook f32 formula
//                                   0.5 x (1 + erff(z)) has no correct digit left at x = -6)
//     erfc(t) = exp(-x^2/2) p(q) / (t + 2), q = (t - 2) / (t + 2) (Shepherd and Laframboise's variable;
//     p a degree-11 fit; one division), and exp(-x^2/2) taken from x itself with x^2 split exactly in
//     two, so neither the rounding of z nor that of x^2 reaches the tail. Beyond |x| = 14, GELU is 0 or x
//     (true to within 3e-44) and its derivative 0 or 1.
//   gelu_grad_f32(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi), sharing exp(-x^2/2).
// Measured against f64 (tests/kernels/test_vec_math.cpp asserts 1.5 / 8 / 8): exp_f32 <= 1.01 ulp;
// gelu_f32 <= 5.4 ulp and gelu_grad_f32 <= 4.8 ulp of |Phi| + |x phi| on [-10, 10], with and without FMA.
// GELU of -inf is NaN and its derivative at +-inf NaN, as the formula in f64 (and PyTorch) gives. The
// vectorised GELU costs about 2 ns per element on a Zen 3 core (std::erf's loop: 11 ns); see
// docs/PERFORMANCE.md.
//
// f64 keeps std::erf / std::exp (kernels/elementwise_math.h): the f64 finite-difference checks rely on
// them. Results may differ in the last bits between clones (the v3 / v4 clones contract a*b + c into an
// FMA, the baseline does not), as the GEMM's do.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>

namespace sanf::kernels::cpu::vmath {

// c ? a : b by bit masks. With a plain ?: GCC sinks the work of each side into a branch and then, since
// f32 arithmetic may trap (-ftrapping-math, the default), will not speculate it again to vectorise
// without AVX-512 masking. Both sides are computed anyway.
[[gnu::always_inline]] inline float select(bool c, float a, float b) {
  const uint32_t m = 0u - uint32_t(c);
  return std::bit_cast<float>((std::bit_cast<uint32_t>(a) & m) | (std::bit_cast<uint32_t>(b) & ~m));
}

// exp(hi + lo) without rounding hi + lo first (lo joins after the range reduction); |lo| <= 0.25, and
// hi + lo in [-104, 89] (no checks: outside, the result is garbage).
[[gnu::always_inline]] inline float exp_reduced(float hi, float lo) {
  // n = round(s log2 e) by the 1.5 * 2^23 trick: adding it leaves n in the low mantissa bits.
  constexpr float kMagic = 12582912.0f;
  const float t = (hi + lo) * 1.44269504088896341f + kMagic;
  const float nf = t - kMagic;
  const int32_t n = int32_t(std::bit_cast<uint32_t>(t) - std::bit_cast<uint32_t>(kMagic));
  // r = s - n ln2, ln2 = 0.693359375 - 2.12194440e-4: n * 0.693359375 is exact, and so is its difference
  // with hi (Sterbenz), whatever the size of hi.
  float r = hi - nf * 0.693359375f;
  r = r - nf * -2.12194440e-4f + lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  // 2^n = 2^n1 * 2^n2, both halves normal numbers for n in [-150, 129]: results down into the subnormals
  // and up to overflow are rounded once.
  const int32_t n1 = n >> 1, n2 = n - n1;
  const float s1 = std::bit_cast<float>(uint32_t(n1 + 127) << 23);
  const float s2 = std::bit_cast<float>(uint32_t(n2 + 127) << 23);
  return p * s1 * s2;
}

// exp(hi + lo) for any hi + lo: 0 below -104, inf above 89, NaN for NaN.
[[gnu::always_inline]] inline float exp_f32(float hi, float lo = 0.0f) {
  const float s = hi + lo;
  float y = exp_reduced(hi, lo);
  y = select(s < -104.0f, 0.0f, y);
  y = select(s > 89.0f, std::numeric_limits<float>::infinity(), y);
  return select(s != s, s, y);
}

// erf(z) = z + z * erf_small_poly(z^2) for |z| <= 0.927734375 (N. Juffa's vectorisable erff, max error
// 0.99 ulp with FMA).
[[gnu::always_inline]] inline float erf_small_poly(float s) {
  float p = -5.96761703e-4f;
  p = p * s + 4.99119423e-3f;
  p = p * s - 2.67681349e-2f;
  p = p * s + 1.12819925e-1f;
  p = p * s - 3.76125336e-1f;
  return p * s + 1.28379166e-1f;
}

// (t + 2) exp(t^2) erfc(t) for t in [0, 14.5], as a polynomial in q = (t - 2) / (t + 2) in [-1, 0.758]
// (the variable of M. M. Shepherd and J. G. Laframboise, Math. Comp. 36 (1981); the function is smooth
// there and falls from 2 to 0.64). Chebyshev fit of degree 11 (mpmath chebyfit), max error 1.5e-9. With the
// factor (t + 2) rather than their (1 + 2t), erfc(t) = exp(-t^2) p(q) u with u = 1 / (t + 2) and
// q = (t - 2) u: one division.
[[gnu::always_inline]] inline float erfc_scaled_poly(float q) {
  float p = 2.721521926e-05f;
  p = p * q + 1.113293267e-04f;
  p = p * q + 2.376555259e-05f;
  p = p * q - 6.449601221e-04f;
  p = p * q - 8.273032783e-04f;
  p = p * q + 3.086378423e-03f;
  p = p * q + 6.476155891e-03f;
  p = p * q - 2.151028340e-02f;
  p = p * q - 3.644188285e-02f;
  p = p * q + 2.794720858e-01f;
  p = p * q - 6.871606954e-01f;
  return p * q + 1.021582705e+00f;
}

// exp(-x^2 / 2) to about 1 ulp for |x| <= 14: x^2 / 2 is split as hi + lo with hi exact (x's top 12
// significant bits squared fit in 24), so the rounding of x^2 (relative 2^-24, times x^2 / 2 in the
// exponent) never reaches the result. Rounding x^2 instead would cost 100 ulp at x = -10.
[[gnu::always_inline]] inline float exp_neg_half_square(float x) {
  const float xh = std::bit_cast<float>(std::bit_cast<uint32_t>(x) & 0xfffff000u), xl = x - xh;
  return exp_reduced(-0.5f * (xh * xh), -0.5f * (xl * (x + xh)));
}

// 1 + erf(x / sqrt2) = 2 Phi(x), with e = exp(-x^2 / 2) (0 where x was clamped). x: |x| <= 14.
[[gnu::always_inline]] inline float gelu_two_cdf(float x, float e) {
  const float z = x * 0.707106781186547524f;
  const float t = select(z < 0.0f, -z, z);
  const float small = 1.0f + (z + z * erf_small_poly(z * z));  // used for 0 <= z <= 0.9277 only
  const float u = 1.0f / (t + 2.0f);
  const float erfc_t = e * (erfc_scaled_poly((t - 2.0f) * u) * u);  // erfc(|z|)
  return select(z < 0.0f, erfc_t, select(t > 0.927734375f, 2.0f - erfc_t, small));
}

// The argument clamped to [-14, 14] (beyond, x Phi(x) is 0 or x to within 3e-44, and exp(-x^2 / 2) stays
// in the range of exp_reduced), and exp(-x^2 / 2) of it, set to 0 where the clamp changed x (and for NaN).
struct GeluArg {
  float c, e;
};
[[gnu::always_inline]] inline GeluArg gelu_arg(float x) {
  float c = select(x < -14.0f, -14.0f, x);
  c = select(c > 14.0f, 14.0f, c);  // NaN passes through
  return {c, select(c != x, 0.0f, exp_neg_half_square(c))};
}

[[gnu::always_inline]] inline float gelu_f32(float x) {
  const GeluArg a = gelu_arg(x);
  return x * (0.5f * gelu_two_cdf(a.c, a.e));
}

[[gnu::always_inline]] inline float gelu_grad_f32(float x) {
  const GeluArg a = gelu_arg(x);
  return 0.5f * gelu_two_cdf(a.c, a.e) + x * (a.e * 0.398942280401432678f);  // 1 / sqrt(2 pi)
}

}  // namespace sanf::kernels::cpu::vmath
