// kernels/cpu/cuda_options_stub.cpp: the CUDA backend switches of a build without CUDA (see
// kernels/cuda_options.h): the flags are kept, so the settings read back, and change nothing; the fused
// attention (kernels/fast/attention.h) never fits, and asking for it says there is no CUDA. The CUDA
// build's versions are in kernels/cuda/matmul.cu, next to the cuBLAS handle they configure.
#include "kernels/cuda_options.h"

#include "kernels/fast/attention.h"

#ifndef SANF_CUDA
#include <atomic>

namespace sanf::kernels {
namespace {
std::atomic<bool> g_tf32{false}, g_fused_attention{false}, g_cublaslt{false};  // the CUDA build's defaults
}  // namespace
void set_tf32(bool on) { g_tf32 = on; }
bool tf32_enabled() { return g_tf32; }
void set_fused_attention(bool on) { g_fused_attention = on; }
bool fused_attention_enabled() { return g_fused_attention; }
void set_cublaslt(bool on) { g_cublaslt = on; }
bool cublaslt_enabled() { return g_cublaslt; }
long long cublaslt_gemm_count() { return 0; }
namespace cuda {
bool attention_bf16_fits(int64_t, int64_t) { return false; }
void attention_bf16(const float*, void*, DType, int64_t, int64_t, int64_t, int64_t, float) {
  no_cuda("attention_bf16");
}
}  // namespace cuda
}  // namespace sanf::kernels
#endif
