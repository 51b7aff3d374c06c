// apps/extract.cpp: backbone construction and batched feature extraction.
#include "apps/extract.h"

#include <chrono>
#include <cstdio>

#include "kernels/copy.h"
#include "vit/preprocess.h"

namespace sanf::apps {

std::unique_ptr<vit::VisionTransformer> open_backbone(const BackboneOptions& opt) {
  const std::string prefix = "random:";
  if (opt.spec.rfind(prefix, 0) == 0) {
    vit::ViTConfig cfg = vit::vit_config(opt.spec.substr(prefix.size()));
    if (opt.image_size > 0) cfg.image_size = opt.image_size;
    if (opt.patch_size > 0) cfg.patch_size = opt.patch_size;
    cfg.validate(opt.spec);
    Generator gen(opt.seed);
    return std::make_unique<vit::VisionTransformer>(cfg, nn::InitOptions{&gen, DType::F32, opt.device});
  }
  SANF_CHECK(opt.patch_size == 0, "--patch-size applies to random backbones only; ", opt.spec,
             " has its own patch size");
  return vit::VisionTransformer::load(opt.spec, opt.image_size, DType::F32, opt.device);
}

Features extract_features(vit::VisionTransformer& model, const Dataset& ds, const std::vector<int64_t>& indices_in,
                          int64_t batch_size, bool progress) {
  SANF_CHECK(batch_size > 0, "batch size must be positive, got ", batch_size);
  std::vector<int64_t> indices = indices_in;
  if (indices.empty())
    for (int64_t i = 0; i < ds.size(); ++i) indices.push_back(i);
  const vit::ViTConfig& cfg = model.config();
  const int64_t n = int64_t(indices.size()), N = cfg.num_patches(), D = cfg.dim;
  Features f{Tensor::empty({n, D}), Tensor::empty({n, N, D}), Tensor::empty({n}, DType::I64)};
  int64_t* labels = f.labels.data<int64_t>();
  const Device dev = model.cls_token.device();
  NoGradGuard no_grad;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t b = std::min(batch_size, n - start);
    std::vector<Tensor> images;
    for (int64_t k = 0; k < b; ++k) {
      const int64_t i = indices[size_t(start + k)];
      images.push_back(ds.image(i));
      labels[start + k] = ds.label(i);
    }
    Tensor tokens = to(model.forward(to(vit::preprocess(images, cfg), dev)), Device::CPU);  // (b, 1+N, D)
    kernels::copy(narrow(f.cls, 0, start, b), select(tokens, 1, 0));
    kernels::copy(narrow(f.patches, 0, start, b), narrow(tokens, 1, 1, N));
    if (progress) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double rate = double(start + b) / std::max(s, 1e-9);
      std::fprintf(stderr, "\rextract: %lld/%lld images, %.1f img/s, ETA %.0f s   ", (long long)(start + b),
                   (long long)n, rate, double(n - start - b) / rate);
    }
  }
  if (progress && n > 0) std::fprintf(stderr, "\n");
  return f;
}

}  // namespace sanf::apps
