// autograd/fast.h: the fast, inference-only ops of the bf16 ViT path, kept apart from the differentiable
// ops of autograd/ops.h (as MLX keeps mx.fast apart from its core ops). Each one computes what a
// composition of ordinary ops would, with bf16 rounding where its comment says, in fewer passes; none
// has a backward. A reader learning the framework can skip this file: the f32 path (autograd/ops.h) is
// the definition, and tests/autograd/test_matmul_bf16.cpp and tests/vit/test_vit_bf16.cpp pin these ops to
// it.
//
// Under autograd (grad mode on and an input that requires grad) every op here throws, naming itself; use
// them under NoGradGuard. Sources: autograd/fast/*.cpp; kernels: kernels/fast/ (the bf16 GEMM, the q/k/v
// split and the fused CUDA attention), kernels/softmax.h (softmax_to_bf16) and kernels/layernorm.h
// (layernorm_to_bf16).
#pragma once

#include <array>

#include "core/tensor.h"

namespace sanf {

// The bf16 GEMM ops (autograd/fast/matmul_bf16.cpp): the GEMM operands rounded to bf16 (f32 inputs are
// rounded here, bf16 inputs used as they are), products accumulated in f32, the bias, GELU and result f32;
// out = BF16 returns that f32 result rounded to bf16 (bit for bit to(f32 result, BF16), in the epilogue's
// pass), for a result that only feeds another bf16 GEMM.
// x: (..., in), weight: (out, in), bias: (out) or undefined -> (..., out) = act(bf16(x) bf16(W)^T + b).
// residual (optional, f32, the result's shape): added last, in f32, as add(residual, linear_bf16(...)) would
// (bit for bit on the CPU; on CUDA with cuBLASLt switched on, the GEMM adds it and the order of the f32
// additions differs): how a transformer block's proj and fc2 write the residual stream in one pass.
Tensor linear_bf16(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), bool gelu = false,
                   DType out = DType::F32, const Tensor& residual = Tensor());
// (..., M, K) @ (..., K, N), batch dims broadcast.
Tensor matmul_bf16(const Tensor& a, const Tensor& b, DType out = DType::F32);
// to(softmax(x, dim), BF16) bit for bit, in one pass (autograd/fast/softmax_bf16.cpp).
Tensor softmax_bf16(const Tensor& x, int dim);
// to(layer_norm(x, weight, bias, eps), BF16) bit for bit, in one pass (autograd/fast/layernorm_bf16.cpp);
// all f32.
Tensor layer_norm_bf16(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps);
// The heads' q, k and v from the qkv projection's output (B, N, 3D) f32, timm's (3, H, hd) channel layout:
// each (B, H, N, hd) bf16 contiguous, q multiplied by `scale` in f32 first; bit for bit the rounded
// to(mul(q, scale), BF16), to(k, BF16), to(v, BF16) of the permuted views, in one pass
// (kernels/fast/split_qkv.h).
std::array<Tensor, 3> split_qkv_bf16(const Tensor& qkv, int64_t heads, double scale);
// Multi-head self-attention from the qkv projection's output (B, N, 3D), timm's (3, H, hd) channel layout,
// to the heads side by side (B, N, D) in `out` (f32 or bf16): the products in bf16 as matmul_bf16, the
// weights as softmax_bf16 (autograd/fast/attention_bf16.cpp; one fused kernel on CUDA when switched on).
Tensor attention_bf16(const Tensor& qkv, int64_t heads, double scale, DType out = DType::F32);

}  // namespace sanf
