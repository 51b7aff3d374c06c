// kernels/fast/attention.h: fused multi-head self-attention for the bf16 inference path, on CUDA (opt-in).
//
// Input: the qkv projection's output, f32, contiguous (B, N, 3, H, hd) (timm's layout: channel c of the 3D
// is (c / D, (c % D) / hd, c % hd)). Output: (B, N, H * hd), f32 or bf16, heads side by side: what
// nn::Attention's bf16 composite hands to proj (nn/attention.cpp),
//   q = bf16(q * scale), k = bf16(k), v = bf16(v)            (rounded to nearest even, as to(x, BF16))
//   out_i = sum_j p_ij v_j,  p_ij = softmax_j(q_i . k_j)     (f32 scores, f32 exp)
// in one kernel, FlashAttention-2 style (kernels/fast/flash_attention.cuh): keys and values stream through shared
// memory 64 at a time and each query row keeps a running max and sum, so the (B, H, N, N) scores are never
// written, nor the q, k, v copies, nor the head-transposed output; the products run on the tensor cores
// (mma.sync, bf16 operands, f32 accumulation).
//
// It is not bit for bit the composite. The composite rounds the normalised weights to bf16 before P v;
// the fused kernel rounds the unnormalised exp(s_ij - m), where m is the row's running max, and divides
// the f32 sum of products by the f32 sum of the unrounded exps at the end (the composite sums those in
// double). Both are the same attention with one bf16 rounding per weight; tests/cuda/test_cuda_bf16.cpp
// holds the two to each other and each to an f64 attention of the same bf16 operands, and
// tests/kernels/test_flash_emulated.cpp does the same on the CPU, running the kernel lane by lane.
//
// Shapes it takes (attention_bf16_supported): hd in {32, 64, 128} and 1 <= N <= 2^20 (any length: keys are
// streamed); anything else takes the composite. ViTs at 224 and 384 with patch 16 (N = 197, 577; hd = 64)
// qualify. qkv must be 16-byte aligned (a tensor that starts where its allocation does is).
//
// Off by default (kernels/cuda_options.h; set_fused_attention(true) or SANF_FUSED_ATTENTION=1 turns it on)
// until a GPU run shows it faster than the composite. This kernel replaced a first fused kernel (one block
// held a head's whole K and V, N <= 256, wmma through shared memory) that on an H200 passed its tests and
// compute-sanitizer but took 1.48 ms per launch at ViT-L/16, batch 64, no faster than the composite
// (docs/PERFORMANCE.md). **This kernel has not yet run on a GPU.**
#pragma once

#include "kernels/cuda_options.h"
#include "kernels/dispatch.h"

namespace sanf::kernels {

inline bool attention_bf16_supported(int64_t N, int64_t hd) {
  return N >= 1 && N <= (int64_t(1) << 20) && (hd == 32 || hd == 64 || hd == 128);
}

namespace cuda {
// Whether this process can run the kernel for the shape: attention_bf16_supported and a usable CUDA device
// (its static 18 to 34 KiB of shared memory per block fit every sm_80+ GPU). False in a build without CUDA
// or on a machine without a device.
bool attention_bf16_fits(int64_t N, int64_t hd);
// qkv: B*N*3*H*hd f32 on the device, 16-byte aligned; out: B*N*H*hd of out_dt (F32 or BF16), 8-byte aligned.
void attention_bf16(const float* qkv, void* out, DType out_dt, int64_t B, int64_t N, int64_t H, int64_t hd,
                    float scale);
}  // namespace cuda

// cuda::attention_bf16 as one kernel call of the library (counted as the device switch counts the others:
// kernels/dispatch.h). The kernel is CUDA's alone: the op calls it only when fused_attention_used.
inline void fused_attention_bf16(const float* qkv, void* out, DType out_dt, int64_t B, int64_t N, int64_t H,
                                 int64_t hd, float scale) {
  count_kernel_call();
  cuda::attention_bf16(qkv, out, out_dt, B, N, H, hd, scale);
}

// Whether attention_bf16 (autograd/fast/attention_bf16.cpp) runs the fused kernel for a tensor on `device`
// with N tokens of head width hd: switched on, on CUDA, and a shape it takes.
inline bool fused_attention_used(Device device, int64_t N, int64_t hd) {
  return device == Device::CUDA && fused_attention_enabled() && cuda::attention_bf16_fits(N, hd);
}

}  // namespace sanf::kernels
