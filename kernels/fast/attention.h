// kernels/fast/attention.h: fused multi-head self-attention for the bf16 inference path, on CUDA (opt-in).
//
// Input: the qkv projection's output, f32, contiguous (B, N, 3, H, hd) (timm's layout: channel c of the 3D
// is (c / D, (c % D) / hd, c % hd)). Output: (B, N, H * hd), f32 or bf16, heads side by side: exactly
// what nn::Attention's bf16 composite hands to proj (nn/attention.cpp),
//   q = bf16(q * scale), k = bf16(k), v = bf16(v)            (rounded to nearest even, as to(x, BF16))
//   P = bf16(softmax_j(q . k_j))                             (f32 scores, f32 exp, the sum in double)
//   out = P v                                                (f32 accumulation; rounded if out is bf16)
// with the two products on the tensor cores (nvcuda::wmma, 16 x 16 x 16 bf16 tiles, f32 accumulators),
// but in one kernel: the (B, H, N, N) scores and weights are never written to memory (they live in shared
// memory, one 64-row query tile of one head per block), and neither are the q, k, v copies or the
// head-transposed output. It differs from the composite only in the order of the f32 sums of the products.
//
// Shapes it takes (attention_bf16_supported): hd in {32, 64, 128}, 1 <= N <= 256 (K and V of a head, and
// a score row per lane's registers); anything else takes the composite. ViTs at 224 with patch 16
// (N = 197, hd = 64) qualify.
//
// Off by default (kernels/cuda_options.h; set_fused_attention(true) or SANF_FUSED_ATTENTION=1 turns it on).
// On an H200 it passes the CUDA tests, memcheck and racecheck, but at ViT-L/16, batch 64, one launch takes
// about 1.5 ms (about 1.7 TFLOP/s: one 64-query tile per block leaves the tensor cores mostly idle), and
// once the composite's softmax was made fast the composite was as fast or faster (docs/PERFORMANCE.md).
#pragma once

#include "kernels/cuda_options.h"
#include "kernels/dispatch.h"

namespace sanf::kernels {

inline bool attention_bf16_supported(int64_t N, int64_t hd) {
  return N >= 1 && N <= 256 && (hd == 32 || hd == 64 || hd == 128);
}

namespace cuda {
// Whether this device can run the kernel for the shape: attention_bf16_supported, and the shared memory it
// needs (104 KiB at N = 197, hd = 64) within the device's per-block limit (227 KiB on sm_90, 163 KiB on
// sm_80, 99 KiB on sm_86). False in a build without CUDA or on a machine without a device.
bool attention_bf16_fits(int64_t N, int64_t hd);
// qkv: B*N*3*H*hd f32 on the device; out: B*N*H*hd of out_dt (F32 or BF16).
void attention_bf16(const float* qkv, void* out, DType out_dt, int64_t B, int64_t N, int64_t H, int64_t hd,
                    float scale);
}  // namespace cuda

// Whether attention_bf16 (autograd/fast/attention_bf16.cpp) runs the fused kernel for a tensor on `device`
// with N tokens of head width hd: switched on, on CUDA, and fitting this device.
inline bool fused_attention_used(Device device, int64_t N, int64_t hd) {
  return device == Device::CUDA && fused_attention_enabled() && cuda::attention_bf16_fits(N, hd);
}

}  // namespace sanf::kernels
