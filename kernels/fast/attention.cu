// kernels/fast/attention.cu: the launch of the fused bf16 attention (kernels/fast/attention.h); the kernel,
// FlashAttention-2 style, is kernels/fast/flash_attention.cuh, with its design.
#include <atomic>

#include "kernels/fast/attention.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda_options.h"
#include "kernels/fast/flash_attention.cuh"

namespace sanf::kernels {

namespace {
std::atomic<bool> g_fused_attention{env_flag("SANF_FUSED_ATTENTION")};
}  // namespace

void set_fused_attention(bool on) { g_fused_attention = on; }
bool fused_attention_enabled() { return g_fused_attention; }

namespace cuda {

using namespace cuda_detail;
using namespace flash_detail;

namespace {

template <int HD, typename O>
void launch(const float* qkv, O* out, int64_t B, int64_t N, int64_t H, float scale) {
  const int64_t tiles = (N + kRows - 1) / kRows;
  flash_attention_bf16_kernel<HD, O><<<unsigned(tiles * B * H), kWarps * 32>>>(qkv, out, int(N), int(H), int(tiles),
                                                                                scale);
  SANF_CUDA_LAUNCH_CHECK();
}

template <typename O>
void launch_hd(const float* qkv, O* out, int64_t B, int64_t N, int64_t H, int64_t hd, float scale) {
  switch (hd) {
    case 32: return launch<32>(qkv, out, B, N, H, scale);
    case 64: return launch<64>(qkv, out, B, N, H, scale);
    case 128: return launch<128>(qkv, out, B, N, H, scale);
  }
  SANF_FAIL("[attention_bf16] head dim ", hd, " is not fused (32, 64 or 128)");
}

}  // namespace

bool attention_bf16_fits(int64_t N, int64_t hd) {
  if (!attention_bf16_supported(N, hd) || !cuda_available()) return false;
  int device = 0, major = 0;  // the kernel's bf16 mma.sync and cvt need compute capability 8.0
  return cudaGetDevice(&device) == cudaSuccess &&
         cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess && major >= 8;
}

void attention_bf16(const float* qkv, void* out, DType out_dt, int64_t B, int64_t N, int64_t H, int64_t hd,
                    float scale) {
  SANF_CHECK(attention_bf16_fits(N, hd), "[attention_bf16] N = ", N, ", head dim ", hd,
             " is not fused on this device (see kernels/fast/attention.h)");
  SANF_CHECK((N + kRows - 1) / kRows * B * H <= int64_t(INT32_MAX), "[attention_bf16] too many blocks: ",
             (N + kRows - 1) / kRows, " query tiles x ", B * H, " (batch, head) pairs");
  SANF_CHECK(reinterpret_cast<uintptr_t>(qkv) % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 8 == 0,
             "[attention_bf16] qkv must be 16-byte aligned and out 8-byte aligned");
  if (B == 0 || H == 0) return;
  if (out_dt == DType::BF16)
    launch_hd(qkv, static_cast<bf16*>(out), B, N, H, hd, scale);
  else if (out_dt == DType::F32)
    launch_hd(qkv, static_cast<float*>(out), B, N, H, hd, scale);
  else
    SANF_FAIL("[attention_bf16] the output is f32 or bf16, not ", dtype_name(out_dt));
}

}  // namespace cuda
}  // namespace sanf::kernels
