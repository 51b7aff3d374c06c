// kernels/fast/split_qkv.h: the bf16 attention's q, k and v from the qkv projection, in one pass.
//
// qkv is (B, N, 3 * H * hd) f32, timm's channel layout (3, H, hd): channel c = which * H * hd + h * hd + d.
// The three outputs are bf16, each (B, H, N, hd) contiguous, at q, k and v:
//   q[b, h, n, d] = bf16(qkv[b, n, 0, h, d] * float(scale))   (the product in f32, then rounded)
//   k[b, h, n, d] = bf16(qkv[b, n, 1, h, d])
//   v[b, h, n, d] = bf16(qkv[b, n, 2, h, d])
// with bf16(.) round to nearest even, as to(x, BF16): bit for bit what the composite
//   t = permute(reshape(qkv, {B, N, 3, H, hd}), {2, 0, 3, 1, 4});
//   to(mul(select(t, 0, 0), scale), BF16), to(select(t, 0, 1), BF16), to(select(t, 0, 2), BF16)
// computes in five strided passes (a copy of q, its scaling, and three strided conversions). On an H200
// those passes were a quarter of a bf16 ViT-L forward (docs/PERFORMANCE.md's profile).
//
// CPU: the plain loops (the definition). CUDA: one block per (b, n) row of qkv; its threads read the row's
// 3 * H * hd values in order (coalesced) and write each to its place (runs of hd consecutive values).
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "kernels/dispatch.h"

namespace sanf::kernels {

namespace cpu {
void split_qkv_bf16(const float* qkv, bf16* q, bf16* k, bf16* v, int64_t B, int64_t N, int64_t H, int64_t hd,
                    float scale);
}  // namespace cpu
namespace cuda {
void split_qkv_bf16(const float* qkv, bf16* q, bf16* k, bf16* v, int64_t B, int64_t N, int64_t H, int64_t hd,
                    float scale);
}  // namespace cuda

inline void split_qkv_bf16(Device device, const float* qkv, bf16* q, bf16* k, bf16* v, int64_t B, int64_t N,
                           int64_t H, int64_t hd, float scale) {
  SANF_DEVICE_SWITCH(device, "split_qkv_bf16", cpu::split_qkv_bf16(qkv, q, k, v, B, N, H, hd, scale),
                     cuda::split_qkv_bf16(qkv, q, k, v, B, N, H, hd, scale));
}

}  // namespace sanf::kernels
