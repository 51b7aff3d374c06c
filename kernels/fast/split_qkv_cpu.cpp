// kernels/fast/split_qkv_cpu.cpp: the CPU definition of split_qkv_bf16 (kernels/fast/split_qkv.h): for each
// (b, n) row of qkv, each of its 3 * H * hd values to its place in q, k or v, rounded as to(x, BF16) does.
#include "kernels/cpu/loops.h"
#include "kernels/fast/split_qkv.h"

namespace sanf::kernels::cpu {

void split_qkv_bf16(const float* qkv, bf16* q, bf16* k, bf16* v, int64_t B, int64_t N, int64_t H, int64_t hd,
                    float scale) {
  const int64_t D = H * hd;
  bf16* const outs[3] = {q, k, v};
  // One (b, n) row per step: 3 * D values read in order.
  parallel_for(B * N, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, 3 * D)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / N, n = r % N;
      const float* row = qkv + r * 3 * D;
      for (int which = 0; which < 3; ++which)
        for (int64_t h = 0; h < H; ++h) {
          const float* in = row + which * D + h * hd;
          bf16* out = outs[which] + ((b * H + h) * N + n) * hd;
          for (int64_t d = 0; d < hd; ++d)
            out[d].bits = f32_to_bf16_bits(which == 0 ? in[d] * scale : in[d]);
        }
    }
  });
}

}  // namespace sanf::kernels::cpu
