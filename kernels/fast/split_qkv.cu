// kernels/fast/split_qkv.cu: split_qkv_bf16 on CUDA (kernels/fast/split_qkv.h): one block per (b, n) row of
// qkv, grid-stride over the B * N rows; its threads read the row's 3 * H * hd values in order (coalesced) and
// write each, rounded to bf16 (q's after the f32 product with the scale), to its head's place: runs of hd
// consecutive values. The channel arithmetic is in 32 bits (a row is at most a few thousand values).
#include "kernels/cuda/common.cuh"
#include "kernels/fast/split_qkv.h"

namespace sanf::kernels::cuda {

using namespace cuda_detail;

namespace {

__global__ void split_qkv_kernel(const float* __restrict__ qkv, bf16* __restrict__ q, bf16* __restrict__ k,
                                 bf16* __restrict__ v, int64_t rows, int N, int H, int hd, float scale) {
  const int D = H * hd, D3 = 3 * D;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t b = r / N;
    const int n = int(r - b * N);
    const float* row = qkv + r * D3;
    for (int c = threadIdx.x; c < D3; c += blockDim.x) {
      const int which = c / D, rem = c - which * D, h = rem / hd, d = rem - h * hd;
      const float x = row[c];
      bf16* out = which == 0 ? q : (which == 1 ? k : v);
      out[((b * H + h) * N + n) * hd + d].bits = f32_to_bf16_bits(which == 0 ? x * scale : x);
    }
  }
}

}  // namespace

void split_qkv_bf16(const float* qkv, bf16* q, bf16* k, bf16* v, int64_t B, int64_t N, int64_t H, int64_t hd,
                    float scale) {
  const int64_t rows = B * N;
  if (rows == 0 || H * hd == 0) return;
  SANF_CHECK(3 * H * hd <= (int64_t(1) << 30) && N <= (int64_t(1) << 30), "split_qkv_bf16: a row of ", 3 * H * hd,
             " values or ", N, " tokens is beyond the kernel's 32-bit channel arithmetic");
  split_qkv_kernel<<<row_blocks(rows), kThreads>>>(qkv, q, k, v, rows, int(N), int(H), int(hd), scale);
  SANF_CUDA_LAUNCH_CHECK();
}

}  // namespace sanf::kernels::cuda
