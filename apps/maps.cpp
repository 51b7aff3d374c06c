// apps/maps.cpp: attention and gradient maps, upsampling, the heat-map overlay, pixel AUROC (see maps.h).
#include "apps/maps.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "apps/interrupt.h"
#include "apps/metrics.h"
#include "apps/scoring.h"
#include "vit/preprocess.h"

namespace sanf::apps {

MapKind parse_map_kind(const std::string& name) {
  if (name == "none") return MapKind::None;
  if (name == "attention") return MapKind::Attention;
  if (name == "gradient") return MapKind::Gradient;
  SANF_FAIL("unknown map kind '", name, "' (none, attention, gradient)");
}

const char* map_kind_name(MapKind kind) {
  switch (kind) {
    case MapKind::None: return "none";
    case MapKind::Attention: return "attention";
    case MapKind::Gradient: return "gradient";
  }
  return "?";
}

namespace {
// (B, n) -> (B, g, g) with g * g = n.
Tensor as_grid(const Tensor& per_token) {
  const int64_t B = per_token.size(0), n = per_token.size(1);
  const auto g = int64_t(std::llround(std::sqrt(double(n))));
  SANF_CHECK(g * g == n, "[anomaly map] ", n, " tokens are not a square grid");
  return reshape(contiguous(to(per_token, Device::CPU)), {B, g, g});
}
}  // namespace

Tensor patch_maps(flows::Flow& flow, MapKind kind, const Tensor& y, const Tensor& P) {
  SANF_CHECK(kind != MapKind::None, "[anomaly map] no map kind given");
  if (kind == MapKind::Attention) {
    NoGradGuard no_grad;
    flow.record_attention(true);
    flow.forward(y, P);
    Tensor a = flow.patch_attention();
    flow.record_attention(false);
    return as_grid(a);
  }
  SANF_CHECK(grad_enabled(), "[anomaly map] the gradient map needs grad mode on (it runs a backward)");
  SANF_CHECK(P.defined(), "[anomaly map] the gradient map needs the patch tokens");
  // The tokens as a leaf of their own; the flow's parameters take no gradient meanwhile.
  std::vector<bool> was;
  for (auto& [name, p] : flow.named_parameters()) was.push_back(p->requires_grad());
  flow.set_requires_grad(false);
  Tensor tokens = detach(P);
  tokens.set_requires_grad(true);
  Tensor total = sum(flows::nll(flow.forward(detach(y), tokens)));
  backward(total);
  size_t i = 0;
  for (auto& [name, p] : flow.named_parameters()) p->set_requires_grad(was[i++]);
  NoGradGuard no_grad;
  const Tensor g = to(tokens.grad(), DType::F32);  // (B, N, D)
  return as_grid(sqrt(sum(square(g), {2})));
}

Tensor upsample_map(const Tensor& map, int64_t H, int64_t W) {
  SANF_CHECK(map.dim() == 2, "[anomaly map] a map is (g, g), got ", shape_str(map.shape()));
  const Tensor m = contiguous(to(to(map, Device::CPU), DType::F32));
  return reshape(vit::resize_image(reshape(m, {1, m.size(0), m.size(1)}), H, W), {H, W});
}

namespace {
// The heat palette at t in [0, 1]: black -> red -> yellow -> white, in thirds.
void heat(double t, double rgb[3]) {
  t = std::clamp(t, 0.0, 1.0) * 3;
  rgb[0] = std::min(t, 1.0);
  rgb[1] = std::clamp(t - 1, 0.0, 1.0);
  rgb[2] = std::clamp(t - 2, 0.0, 1.0);
}
}  // namespace

Tensor overlay_heatmap(const Tensor& image_u8, const Tensor& map, double lo, double hi) {
  const Tensor img = contiguous(to(image_u8, Device::CPU));
  SANF_CHECK(img.dim() == 3 && img.dtype() == DType::U8 && (img.size(0) == 1 || img.size(0) == 3 || img.size(0) == 4),
             "[heat map] the image must be u8 (C, H, W) with C = 1, 3 or 4, got ", img.info());
  const int64_t C = img.size(0), H = img.size(1), W = img.size(2);
  const Tensor m = contiguous(to(to(map, Device::CPU), DType::F32));
  SANF_CHECK(m.dim() == 2 && m.size(0) == H && m.size(1) == W, "[heat map] the map must be (", H, ", ", W,
             ") like the image, got ", shape_str(m.shape()));
  Tensor out = Tensor::empty({3, H, W}, DType::U8);
  const uint8_t* in = img.data<uint8_t>();
  const float* mp = m.data<float>();
  uint8_t* o = out.data<uint8_t>();
  const double span = hi > lo ? hi - lo : 1.0, alpha = 0.6;
  for (int64_t i = 0; i < H * W; ++i) {
    // Grey: the mean of the colour channels (alpha dropped).
    const int64_t cc = std::min<int64_t>(C, 3);
    double grey = 0;
    for (int64_t c = 0; c < cc; ++c) grey += in[c * H * W + i];
    grey /= double(cc);
    double rgb[3];
    heat((mp[i] - lo) / span, rgb);
    for (int c = 0; c < 3; ++c)
      o[c * H * W + i] = uint8_t(std::lround(std::clamp((1 - alpha) * grey + alpha * 255 * rgb[c], 0.0, 255.0)));
  }
  return out;
}

Tensor map_over_image(const Tensor& image_u8, const Tensor& grid_map) {
  const Tensor m = upsample_map(grid_map, image_u8.size(1), image_u8.size(2));
  const std::vector<double> v = m.to_vector();
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return overlay_heatmap(image_u8, m, *lo, *hi);
}

namespace {
// image u8 (C, H, W) -> u8 (3, h, w) fitting a cell x cell square (image_sheet's scaling).
Tensor fit_to_cell(const Tensor& image_u8, int64_t cell) {
  const Tensor img = contiguous(to(image_u8, Device::CPU));
  SANF_CHECK(img.dim() == 3 && img.dtype() == DType::U8 && (img.size(0) == 1 || img.size(0) == 3 || img.size(0) == 4),
             "[image sheet] an image must be u8 (C, H, W) with C = 1, 3 or 4, got ", img.info());
  const int64_t H = img.size(1), W = img.size(2), side = std::max(H, W);
  // Grey repeated (a broadcast view), alpha dropped (a narrowed view), then one copy.
  const Tensor rgb = contiguous(img.size(0) == 1 ? expand(img, {3, H, W}) : narrow(img, 0, 0, 3));
  if (side <= cell) {  // enlarge by a whole factor, nearest neighbour
    const int64_t k = cell / side;
    Tensor out = Tensor::empty({3, H * k, W * k}, DType::U8);
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < H * k; ++y)
        for (int64_t x = 0; x < W * k; ++x)
          out.data<uint8_t>()[(c * H * k + y) * W * k + x] = rgb.data<uint8_t>()[(c * H + y / k) * W + x / k];
    return out;
  }
  const int64_t h = std::max<int64_t>(1, H * cell / side), w = std::max<int64_t>(1, W * cell / side);
  const Tensor small = vit::resize_image(to(rgb, DType::F32), h, w);  // area averaging
  Tensor out = Tensor::empty({3, h, w}, DType::U8);
  for (int64_t i = 0; i < out.numel(); ++i)
    out.data<uint8_t>()[i] = uint8_t(std::lround(std::clamp(double(small.data<float>()[i]), 0.0, 255.0)));
  return out;
}
}  // namespace

Tensor image_sheet(const std::vector<std::vector<Tensor>>& rows, int64_t cell, int64_t pad) {
  SANF_CHECK(cell > 0 && pad >= 0, "[image sheet] needs cell > 0 and pad >= 0, got ", cell, " and ", pad);
  size_t cols = 0;
  for (const auto& r : rows) cols = std::max(cols, r.size());
  const int64_t H = int64_t(rows.size()) * (cell + pad) + pad, W = int64_t(cols) * (cell + pad) + pad;
  Tensor sheet = full({3, H, W}, 255.0, DType::U8);
  uint8_t* s = sheet.data<uint8_t>();
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t c = 0; c < rows[r].size(); ++c) {
      if (!rows[r][c].defined()) continue;
      const Tensor t = fit_to_cell(rows[r][c], cell);
      const int64_t h = t.size(1), w = t.size(2);
      const int64_t y0 = pad + int64_t(r) * (cell + pad) + (cell - h) / 2, x0 = pad + int64_t(c) * (cell + pad) + (cell - w) / 2;
      for (int64_t ch = 0; ch < 3; ++ch)
        for (int64_t y = 0; y < h; ++y)
          std::copy_n(t.data<uint8_t>() + (ch * h + y) * w, w, s + (ch * H + y0 + y) * W + x0);
    }
  return sheet;
}

void PixelAuroc::add(const Tensor& map, const Tensor& mask) {
  const Tensor m = contiguous(to(to(map, Device::CPU), DType::F32));
  SANF_CHECK(m.dim() == 2, "[pixel AUROC] a map must be (S, S), got ", shape_str(m.shape()));
  const float* mp = m.data<float>();
  if (!mask.defined()) {
    for (int64_t i = 0; i < m.numel(); ++i) scores_.push_back(mp[i]), labels_.push_back(0);
    return;
  }
  SANF_CHECK(mask.dim() == 3 && mask.size(0) == 1 && mask.dtype() == DType::U8,
             "[pixel AUROC] a mask must be u8 (1, H, W), got ", mask.info());
  // 0/1 per mask pixel, area-averaged to the map's size.
  const Tensor mc = contiguous(to(mask, Device::CPU));
  Tensor binary = Tensor::empty(mc.shape(), DType::F32);
  for (int64_t i = 0; i < mc.numel(); ++i) binary.data<float>()[i] = mc.data<uint8_t>()[i] != 0 ? 1.f : 0.f;
  const Tensor r = vit::resize_image(binary, m.size(0), m.size(1));
  for (int64_t i = 0; i < m.numel(); ++i) scores_.push_back(mp[i]), labels_.push_back(r.data<float>()[i] >= 0.5f);
}

double PixelAuroc::auroc() const { return sanf::apps::auroc(scores_, labels_); }

nlohmann::json pixel_aurocs(flows::Flow& flow, const FeatureSet& test, const Dataset& test_ds, int64_t image_size,
                            Device device) {
  SANF_CHECK(test_ds.has_masks(), "--masks: this dataset has no ground-truth masks (mvtec has them)");
  const int64_t S = image_size, n = test.size();
  const auto grid = int64_t(std::llround(std::sqrt(double(flow.config().tokens))));  // the backbone's patch grid
  std::vector<MapKind> kinds = {MapKind::Gradient};
  if (!flow.config().no_caff) kinds.insert(kinds.begin(), MapKind::Attention);
  std::map<std::string, PixelAuroc> acc;
  Generator gen(0);
  for (int64_t b0 = 0; b0 < n; b0 += kScoreBatch) {
    check_interrupt(cat("while computing anomaly maps (", b0, "/", n, ")"));
    std::vector<int64_t> rows(static_cast<size_t>(std::min(n - b0, kScoreBatch)));
    std::iota(rows.begin(), rows.end(), b0);
    auto [host_y, host_P] = test.batch(rows);
    const Tensor y = to(host_y, device), P = to(host_P, device);
    std::vector<Tensor> masks;
    for (int64_t r : rows) masks.push_back(test_ds.mask(test.indices()[size_t(r)]));
    for (MapKind kind : kinds) {
      const Tensor maps = patch_maps(flow, kind, y, P);
      for (size_t k = 0; k < rows.size(); ++k)
        acc[map_kind_name(kind)].add(upsample_map(select(maps, 0, int64_t(k)), S, S), masks[k]);
    }
    const Tensor noise = rand({int64_t(rows.size()), grid, grid}, DType::F32, Device::CPU, &gen);
    for (size_t k = 0; k < rows.size(); ++k) acc["random"].add(upsample_map(select(noise, 0, int64_t(k)), S, S), masks[k]);
  }
  nlohmann::json out{{"resolution", S}};
  for (const auto& [kind, a] : acc) out[kind] = a.auroc();
  return out;
}

}  // namespace sanf::apps
