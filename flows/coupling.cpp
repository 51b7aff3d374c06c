// flows/coupling.cpp: soft clamp, permutations and the FLL forward / inverse (math in flows/coupling.h).
#include "flows/coupling.h"

#include <cmath>

namespace sanf::flows {

Tensor soft_clamp(const Tensor& s, double alpha) { return atan(s * (1.0 / alpha)) * (2.0 * alpha / M_PI); }

std::vector<int64_t> inverse_permutation(const Tensor& perm, const std::string& where) {
  SANF_CHECK(perm.defined() && perm.dtype() == DType::I64 && perm.dim() == 1, where,
             ": a permutation must be a 1-D i64 tensor, got ", perm.defined() ? perm.info() : "undefined");
  const std::vector<double> p = perm.to_vector();
  const auto D = int64_t(p.size());
  std::vector<int64_t> inv(p.size(), -1);
  for (int64_t j = 0; j < D; ++j) {
    const auto v = int64_t(p[size_t(j)]);
    SANF_CHECK(v >= 0 && v < D && inv[size_t(v)] < 0, where, ": not a permutation of 0..", D - 1, " (entry ", j, " is ",
               v, v >= 0 && v < D ? ", repeated)" : ", out of range)");
    inv[size_t(v)] = j;
  }
  return inv;
}

FLL::FLL(int64_t dim, int64_t hidden, int64_t heads, bool qkv_bias, double alpha_, nn::InitOptions init)
    : perm([&] {
        Generator& g = init.gen ? *init.gen : default_generator();
        std::vector<int64_t> p = g.permutation(dim);
        return Tensor::from_vector(std::vector<double>(p.begin(), p.end()), {dim}, DType::I64, init.device);
      }()),
      caff1(dim / 2, hidden, heads, qkv_bias, init),
      caff2(dim / 2, hidden, heads, qkv_bias, init),
      alpha(alpha_) {
  SANF_CHECK(dim >= 2 && dim % 2 == 0, "[FLL] the width must be even, got ", dim);
  register_buffer("perm", perm);
  register_module("caff1", caff1);
  register_module("caff2", caff2);
}

// perm is a permutation of 0..D-1 on the layer's device: made so here, and checked when a checkpoint is
// loaded (flows/checkpoint.cpp). So index_select's host-side range check is skipped: on a GPU it would copy
// perm to the host, waiting for the device, twice per layer and step.
Tensor FLL::permute_channels(const Tensor& x) const { return index_select(x, x.dim() - 1, perm, false); }

namespace {
// y: (B, D); P: (B, N, D) or undefined.
void check_inputs(const char* op, const Tensor& y, const Tensor& P, int64_t D) {
  SANF_CHECK(y.defined() && y.dim() == 2 && y.size(1) == D, "[", op, "] input must be (B, ", D, "), got ",
             y.defined() ? shape_str(y.shape()) : "undefined");
  SANF_CHECK(!P.defined() || (P.dim() == 3 && P.size(0) == y.size(0) && P.size(2) == D), "[", op, "] tokens must be (",
             y.size(0), ", N, ", D, "), got ", P.defined() ? shape_str(P.shape()) : "");
}
}  // namespace

FLL::Output FLL::forward(const Tensor& y, const Tensor& P) {
  check_inputs("FLL forward", y, P, perm.numel());
  const int64_t d = perm.numel() / 2;
  Tensor yp = permute_channels(y);                           // (B, D)
  Tensor Pp = P.defined() ? permute_channels(P) : Tensor();  // (B, N, D)
  Tensor a = narrow(yp, 1, 0, d), b = narrow(yp, 1, d, d);   // (B, d) each
  Tensor Pa = Pp.defined() ? narrow(Pp, 2, 0, d) : Tensor(), Pb = Pp.defined() ? narrow(Pp, 2, d, d) : Tensor();

  auto [s1, t1] = caff1.forward(a, Pa);
  Tensor c1 = soft_clamp(s1, alpha);
  Tensor b2 = b * exp(c1) + t1;  // b' = b * exp(c(s1)) + t1
  auto [s2, t2] = caff2.forward(b2, Pb);
  Tensor c2 = soft_clamp(s2, alpha);
  Tensor a2 = a * exp(c2) + t2;  // a' = a * exp(c(s2)) + t2

  Tensor logdet = sum(c1, {1}) + sum(c2, {1});  // (B)
  return {concat({a2, b2}, 1), logdet, Pp};
}

Tensor FLL::inverse(const Tensor& z, const Tensor& P) {
  check_inputs("FLL inverse", z, P, perm.numel());
  const int64_t d = perm.numel() / 2;
  Tensor Pp = P.defined() ? permute_channels(P) : Tensor();
  Tensor Pa = Pp.defined() ? narrow(Pp, 2, 0, d) : Tensor(), Pb = Pp.defined() ? narrow(Pp, 2, d, d) : Tensor();
  Tensor a2 = narrow(z, 1, 0, d), b2 = narrow(z, 1, d, d);

  auto [s2, t2] = caff2.forward(b2, Pb);  // s2, t2 depend on b' only, which z holds as is
  Tensor a = (a2 - t2) * exp(-soft_clamp(s2, alpha));
  auto [s1, t1] = caff1.forward(a, Pa);
  Tensor b = (b2 - t1) * exp(-soft_clamp(s1, alpha));

  // Undo the permutation: y[:, perm[j]] = yp[:, j], i.e. y = yp[:, inv].
  std::vector<int64_t> inv = inverse_permutation(perm, "[FLL] inverse");
  Tensor inv_t = Tensor::from_vector(std::vector<double>(inv.begin(), inv.end()), {int64_t(inv.size())}, DType::I64);
  return index_select(concat({a, b}, 1), 1, inv_t);
}

}  // namespace sanf::flows
