// vit/pos_embed.cpp: bicubic resampling of the position-embedding grid (math in vit/pos_embed.h).
#include "vit/pos_embed.h"

#include <algorithm>
#include <cmath>

namespace sanf::vit {

namespace {

// Keys' cubic convolution kernel with parameter a (PyTorch's cubic_convolution1/2):
//   |x| <= 1:     (a + 2)|x|^3 - (a + 3)|x|^2 + 1
//   1 < |x| < 2:  a|x|^3 - 5a|x|^2 + 8a|x| - 4a
double cubic_near(double x, double a) { return ((a + 2) * x - (a + 3)) * x * x + 1; }
double cubic_far(double x, double a) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; }
double keys(double x, double a) {
  x = std::fabs(x);
  if (x < 1) return cubic_near(x, a);
  if (x < 2) return cubic_far(x, a);
  return 0;
}

}  // namespace

std::vector<std::vector<double>> bicubic_weights(int64_t in, int64_t out, bool antialias) {
  SANF_CHECK(in > 0 && out > 0, "[bicubic] sizes must be positive, got ", in, " -> ", out);
  std::vector<std::vector<double>> w(size_t(out), std::vector<double>(size_t(in), 0.0));
  const double scale = double(in) / double(out);  // align_corners=False, size given: in / out
  for (int64_t i = 0; i < out; ++i) {
    auto& row = w[size_t(i)];
    if (!antialias) {
      // Source coordinate of output pixel centre i (not clamped for cubic), its floor and fraction.
      const double s = scale * (double(i) + 0.5) - 0.5;
      const double f = std::floor(s), t = s - f;
      const double tap[4] = {cubic_far(t + 1, -0.75), cubic_near(t, -0.75), cubic_near(1 - t, -0.75),
                             cubic_far(2 - t, -0.75)};
      for (int k = 0; k < 4; ++k) {
        const int64_t src = std::clamp(int64_t(f) - 1 + k, int64_t(0), in - 1);  // border: repeat the edge
        row[size_t(src)] += tap[k];
      }
      continue;
    }
    // Antialiased (PyTorch's _upsample_bicubic2d_aa, PIL's resampling): the a = -0.5 kernel, widened by
    // `scale` when shrinking; inputs j in [lo, hi) whose centres fall under it, weights normalised.
    const double support = scale >= 1 ? 2.0 * scale : 2.0;
    const double inv = scale >= 1 ? 1.0 / scale : 1.0;
    const double centre = scale * (double(i) + 0.5);
    const int64_t lo = std::max(int64_t(centre - support + 0.5), int64_t(0));
    const int64_t hi = std::min(int64_t(centre + support + 0.5), in);
    double total = 0;
    for (int64_t j = lo; j < hi; ++j) total += row[size_t(j)] = keys((double(j) - centre + 0.5) * inv, -0.5);
    if (total != 0)
      for (int64_t j = lo; j < hi; ++j) row[size_t(j)] /= total;
  }
  return w;
}

Tensor resample_pos_embed(const Tensor& pos_embed, int64_t old_grid, int64_t new_grid, bool antialias) {
  SANF_CHECK(old_grid > 0 && new_grid > 0, "[resample_pos_embed] grids must be positive, got ", old_grid, " -> ",
             new_grid);
  SANF_CHECK(pos_embed.dim() == 3 && pos_embed.size(0) == 1 && pos_embed.size(1) == 1 + old_grid * old_grid,
             "[resample_pos_embed] pos_embed must be (1, 1 + ", old_grid, "*", old_grid, ", D) for a ", old_grid, " x ",
             old_grid, " grid, got ", shape_str(pos_embed.shape()));
  const int64_t D = pos_embed.size(2), G = old_grid, H = new_grid;
  const std::vector<double> in = pos_embed.to_vector();  // row-major: [token][channel], token 0 = class
  if (G == H) return Tensor::from_vector(in, pos_embed.shape(), pos_embed.dtype(), pos_embed.device());
  const auto w = bicubic_weights(G, H, antialias);  // the same weights along rows and columns

  // Separable: first along grid columns, tmp[a][j][d] = sum_b w[j][b] in[1 + a*G + b][d] (G x H x D), then
  // along rows, out[1 + i*H + j][d] = sum_a w[i][a] tmp[a][j][d].
  std::vector<double> tmp(size_t(G * H * D), 0.0), out(size_t((1 + H * H) * D), 0.0);
  for (int64_t a = 0; a < G; ++a)
    for (int64_t j = 0; j < H; ++j)
      for (int64_t b = 0; b < G; ++b) {
        const double wb = w[size_t(j)][size_t(b)];
        if (wb == 0) continue;
        const double* src = &in[size_t((1 + a * G + b) * D)];
        double* dst = &tmp[size_t((a * H + j) * D)];
        for (int64_t d = 0; d < D; ++d) dst[d] += wb * src[d];
      }
  for (int64_t i = 0; i < H; ++i)
    for (int64_t a = 0; a < G; ++a) {
      const double wa = w[size_t(i)][size_t(a)];
      if (wa == 0) continue;
      for (int64_t j = 0; j < H; ++j) {
        const double* src = &tmp[size_t((a * H + j) * D)];
        double* dst = &out[size_t((1 + i * H + j) * D)];
        for (int64_t d = 0; d < D; ++d) dst[d] += wa * src[d];
      }
    }
  std::copy(in.begin(), in.begin() + D, out.begin());  // the class position is kept
  return Tensor::from_vector(out, {1, 1 + H * H, D}, pos_embed.dtype(), pos_embed.device());
}

}  // namespace sanf::vit
