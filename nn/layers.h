// nn/layers.h: Linear and LayerNorm modules, initialised as timm initialises a VisionTransformer.
//
// Linear: weight (out, in) ~ truncated normal, std 0.02, bounds +-2 (timm's trunc_normal_ bounds are
// absolute); bias (out) zero. LayerNorm: weight 1, bias 0. Initialisation draws from the Generator given,
// on the host, so a seeded model is the same on every machine and device.
//
// MatmulPrecision is the precision of a module's matrix multiplies in its forward:
//   F32   f32 operands and accumulation: the default, and the only one that records gradients.
//   BF16  operands rounded to bfloat16, products accumulated in f32, results f32 (linear_bf16 / matmul_bf16,
//         autograd/ops.h): about twice TF32's tensor-core throughput on CUDA, relative errors ~1e-2 instead
//         of ~1e-6. Inference only. Everything that is not a GEMM (bias, layer norm, softmax, GELU,
//         residual adds) is computed in f32; a result that only feeds a bf16 GEMM is stored as bf16 (the
//         numbers that GEMM would round it to).
// Linear::set_precision(BF16) converts the weight to bf16 once and keeps that copy (weight_bf16) for every
// forward. It is a snapshot: after the weight changes (a checkpoint loaded into it, an optimiser step, a
// move to another device) call set_precision(BF16) again.
#pragma once

#include "autograd/fast.h"
#include "nn/module.h"

namespace sanf::nn {

enum class MatmulPrecision { F32, BF16 };
const char* precision_name(MatmulPrecision p);  // "f32", "bf16"
// The weight copy a module keeps for precision p: undefined for F32; for BF16 a contiguous bf16 copy of
// `weight` (which must be f32; `module` names it in the error), detached from any graph.
Tensor bf16_weight(MatmulPrecision p, const Tensor& weight, const char* module);

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
  Tensor forward(const Tensor& x) {
    return weight_bf16.defined() ? linear_bf16(x, weight_bf16, bias) : linear(x, weight, bias);
  }
  // residual + forward(x) (residual undefined: forward(x)); in BF16 precision the GEMM adds it
  // (linear_bf16's residual), in F32 it is the add op, so gradients flow as through add.
  Tensor forward_add(const Tensor& x, const Tensor& residual) {
    if (!residual.defined()) return forward(x);
    return weight_bf16.defined() ? linear_bf16(x, weight_bf16, bias, false, DType::F32, residual)
                                 : add(residual, linear(x, weight, bias));
  }
  // gelu(forward(x)), the GELU applied by the GEMM as it writes (linear_gelu; the MLP's first layer).
  Tensor forward_gelu(const Tensor& x) {
    return weight_bf16.defined() ? linear_bf16(x, weight_bf16, bias, true) : linear_gelu(x, weight, bias);
  }
  void set_precision(MatmulPrecision p);
  MatmulPrecision precision() const { return weight_bf16.defined() ? MatmulPrecision::BF16 : MatmulPrecision::F32; }

  Tensor weight, bias;  // (out, in), (out) or undefined
  Tensor weight_bf16;   // (out, in) bf16 copy of weight in BF16 precision, else undefined; not a parameter
  int64_t in_features, out_features;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-6, InitOptions init = {});
  Tensor forward(const Tensor& x) { return layer_norm(x, weight, bias, eps); }
  // forward(x) rounded to bf16, in the layer norm's own pass (layer_norm_bf16; inference only): for an
  // output that only feeds bf16 GEMMs.
  Tensor forward_bf16(const Tensor& x) { return layer_norm_bf16(x, weight, bias, eps); }
  Tensor weight, bias;  // (dim)
  double eps;
};

}  // namespace sanf::nn
