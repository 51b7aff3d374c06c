// flows/coupling.h: the soft clamp, the channel permutation and the FLL (flow-based learning layer).
//
// One FLL maps y (B, D) to y' (B, D), conditioned on patch tokens P (B, N, D) that it never transforms:
//   1. permute the D channels of y and of every token of P by the layer's fixed permutation `perm`
//      (yp[:, j] = y[:, perm[j]]), so the tokens' channels stay aligned with y's;
//   2. split halves (d = D/2): yp = [a, b], Pp = [Pa, Pb];
//   3. couple (the paper's eqs. 2-4):  s1, t1 = CAFF1(a, Pa);   b' = b * exp(c(s1)) + t1
//                                      s2, t2 = CAFF2(b', Pb);  a' = a * exp(c(s2)) + t2;   y' = [a', b']
//   4. c(s) = (2 alpha / pi) atan(s / alpha) keeps every log-scale inside (-alpha, alpha).
// The Jacobian of step 3 is block triangular with diagonal exp(c(s1)) and exp(c(s2)), so
//   log|det J| = sum(c(s1)) + sum(c(s2))        (the permutation's determinant is +-1: adds 0).
// The inverse undoes step 3 in reverse order (a = (a' - t2) exp(-c(s2)), then b = (b' - t1) exp(-c(s1)),
// where s2, t2 depend only on b' and s1, t1 only on a) and then the permutation.
#pragma once

#include <vector>

#include "flows/caff.h"

namespace sanf::flows {

// c(s) = (2 alpha / pi) * atan(s / alpha): (2/pi) s near 0, bounded by +-alpha. s: any shape.
Tensor soft_clamp(const Tensor& s, double alpha);

// perm: (D) i64 holding each of 0..D-1 once -> its inverse inv (inv[perm[j]] = j). Throws naming `where`
// when perm is not a permutation (e.g. a corrupted checkpoint).
std::vector<int64_t> inverse_permutation(const Tensor& perm, const std::string& where);

class FLL : public nn::Module {
 public:
  // Draws the permutation, then CAFF1's and CAFF2's weights, from init.gen (default: the global generator).
  FLL(int64_t dim, int64_t hidden, int64_t heads, bool qkv_bias, double alpha, nn::InitOptions init);

  struct Output {
    Tensor y;       // (B, D), in this layer's (permuted) channel order
    Tensor logdet;  // (B)
    Tensor tokens;  // P permuted like y: what the next layer receives; undefined if P was
  };
  // y: (B, D), P: (B, N, D) in the same channel order as y, or undefined (no tokens: CAFF over [h] only).
  Output forward(const Tensor& y, const Tensor& P);
  // z: (B, D) an output of forward, P: the same tokens forward got -> y (B, D).
  Tensor inverse(const Tensor& z, const Tensor& P);

  // x: (..., D) -> x[..., perm] (channels of y or of every token).
  Tensor permute_channels(const Tensor& x) const;

  Tensor perm;  // (D) i64 buffer: saved in checkpoints, never trained
  CAFF caff1, caff2;
  double alpha;
};

}  // namespace sanf::flows
