// vit/preprocess.cpp: separable resampling and normalisation.
//
// Each axis is resampled by a sparse matrix: output index o takes a weighted sum of a few input indices
// ("taps"). Bilinear taps (growing axis): src = (o + 0.5) * in/out - 0.5, clamped at 0; the two neighbours
// floor(src) and floor(src)+1 (clamped to the last index) with weights 1-l and l, l = src - floor(src).
// Area taps (shrinking axis): input indices [floor(o*in/out), ceil((o+1)*in/out)), equal weights. A 2-D
// resize is rows then columns, which equals PyTorch's 2-D kernels because both are products of 1-D weights.
#include "vit/preprocess.h"

#include <cmath>

namespace sanf::vit {

namespace {
struct Tap {
  int64_t src;
  float w;
};

std::vector<std::vector<Tap>> taps_for(int64_t in, int64_t out) {
  std::vector<std::vector<Tap>> taps(static_cast<size_t>(out));
  const double scale = double(in) / double(out);
  for (int64_t o = 0; o < out; ++o) {
    auto& t = taps[size_t(o)];
    if (out >= in) {  // bilinear (also the identity when out == in)
      double src = std::max(0.0, (double(o) + 0.5) * scale - 0.5);
      const int64_t i0 = std::min(int64_t(src), in - 1);
      const int64_t i1 = i0 + (i0 < in - 1 ? 1 : 0);
      const double l = src - double(i0);
      if (i1 == i0) {  // at the last index both neighbours are the same pixel
        t.push_back({i0, 1.0f});
      } else {
        t.push_back({i0, float(1.0 - l)});
        t.push_back({i1, float(l)});
      }
    } else {  // area
      const int64_t start = (o * in) / out, end = ((o + 1) * in + out - 1) / out;
      for (int64_t i = start; i < end; ++i) t.push_back({i, float(1.0 / double(end - start))});
    }
  }
  return taps;
}
}  // namespace

Tensor resize_image(const Tensor& image, int64_t out_h, int64_t out_w) {
  SANF_CHECK(image.dim() == 3 && image.dtype() == DType::F32 && image.device() == Device::CPU && image.is_contiguous(),
             "[resize] needs a contiguous f32 CPU image (C, H, W), got ", image.info());
  SANF_CHECK(out_h > 0 && out_w > 0, "[resize] output size must be positive, got ", out_h, "x", out_w);
  const int64_t C = image.size(0), H = image.size(1), W = image.size(2);
  SANF_CHECK(H > 0 && W > 0, "[resize] empty image ", shape_str(image.shape()));
  const auto ty = taps_for(H, out_h), tx = taps_for(W, out_w);
  // Columns first: (C, H, W) -> (C, H, out_w), then rows: -> (C, out_h, out_w).
  std::vector<float> mid(size_t(C * H * out_w));
  const float* in = image.data<float>();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < out_w; ++x) {
        float s = 0;
        for (const Tap& t : tx[size_t(x)]) s += t.w * in[(c * H + y) * W + t.src];
        mid[size_t((c * H + y) * out_w + x)] = s;
      }
  Tensor out = Tensor::empty({C, out_h, out_w});
  float* o = out.data<float>();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < out_h; ++y)
      for (int64_t x = 0; x < out_w; ++x) {
        float s = 0;
        for (const Tap& t : ty[size_t(y)]) s += t.w * mid[size_t((c * H + t.src) * out_w + x)];
        o[(c * out_h + y) * out_w + x] = s;
      }
  return out;
}

Tensor preprocess(const std::vector<Tensor>& images, const ViTConfig& cfg) {
  SANF_CHECK(cfg.in_chans == 3, "[preprocess] the backbone takes ", cfg.in_chans, " channels; only 3 is supported");
  const int64_t S = cfg.image_size, B = int64_t(images.size());
  Tensor out = Tensor::empty({B, 3, S, S});
  float* o = out.data<float>();
  for (int64_t b = 0; b < B; ++b) {
    const Tensor& img = images[size_t(b)];
    SANF_CHECK(img.dim() == 3 && img.dtype() == DType::U8, "[preprocess] image ", b, " must be u8 (C, H, W), got ",
               img.info());
    const int64_t C = img.size(0);
    SANF_CHECK(C == 1 || C == 3 || C == 4, "[preprocess] image ", b, " has ", C, " channels (1, 3 or 4 expected)");
    // u8 -> f32 in [0, 1], keeping the colour channels only.
    const int64_t keep = C == 4 ? 3 : C, H = img.size(1), W = img.size(2);
    Tensor f = Tensor::empty({keep, H, W});
    std::vector<double> v = img.to_vector();
    float* fp = f.data<float>();
    for (int64_t i = 0; i < keep * H * W; ++i) fp[i] = float(v[size_t(i)] / 255.0);
    Tensor r = resize_image(f, S, S);
    const float* rp = r.data<float>();
    for (int64_t c = 0; c < 3; ++c) {
      const int64_t src = keep == 1 ? 0 : c;  // gray is replicated to R, G and B
      const float m = float(cfg.mean[size_t(c)]), sd = float(cfg.std[size_t(c)]);
      for (int64_t i = 0; i < S * S; ++i) o[((b * 3 + c) * S * S) + i] = (rp[src * S * S + i] - m) / sd;
    }
  }
  return out;
}

}  // namespace sanf::vit
