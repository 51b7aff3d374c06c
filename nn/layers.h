// nn/layers.h: Linear and LayerNorm modules, initialised as timm initialises a VisionTransformer.
//
// Linear: weight (out, in) ~ truncated normal, std 0.02, bounds +-2 (timm's trunc_normal_ bounds are
// absolute); bias (out) zero. LayerNorm: weight 1, bias 0. Initialisation draws from the Generator given,
// so a seeded model is the same on every machine and device.
#pragma once

#include "nn/module.h"

namespace sanf::nn {

struct InitOptions {
  Generator* gen = nullptr;  // default: the global generator
  DType dtype = DType::F32;
  Device device = Device::CPU;
  // false: weights start as zeros instead of random draws, for a model whose values a checkpoint is about
  // to overwrite (drawing vit-large's 300M numbers takes seconds).
  bool random = true;
};

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias = true, InitOptions init = {}, double std = 0.02);
  Tensor forward(const Tensor& x) { return linear(x, weight, bias); }
  Tensor weight, bias;  // (out, in), (out) or undefined
  int64_t in_features, out_features;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-6, InitOptions init = {});
  Tensor forward(const Tensor& x) { return layer_norm(x, weight, bias, eps); }
  Tensor weight, bias;  // (dim)
  double eps;
};

}  // namespace sanf::nn
