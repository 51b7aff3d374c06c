// kernels/cuda_options.h: process-wide switches of the CUDA backend.
//
// set_tf32(true) lets cuBLAS run f32 matrix multiplies on the tensor cores in TF32 (inputs rounded to a
// 10-bit mantissa, products summed in f32): several times faster on Ampere and Hopper, with relative errors
// around 1e-3 instead of 1e-6. Off by default, so f32 results match the CPU to f32 rounding. f64 is never
// affected. In a build without CUDA the switch is recorded and has no effect (there is no cuBLAS to tell).
#pragma once

#include <cstdlib>
#include <cstring>

namespace sanf::kernels {

void set_tf32(bool on);
bool tf32_enabled();

// set_fused_attention(true) lets nn::Attention's bf16 path on CUDA use the fused kernel of
// kernels/fast/attention.h where the shape allows (else the composite). Off by default until a GPU run shows
// the kernel correct and faster than the composite (docs/PERFORMANCE.md); the environment variable
// SANF_FUSED_ATTENTION=1 turns it on at start-up.
void set_fused_attention(bool on);
bool fused_attention_enabled();

// set_cublaslt(true) lets a one-matrix GEMM with an f32 result run through cuBLASLt where it has something
// to fuse: the bf16 GEMM (kernels/fast/matmul_bf16.h) with a bias and/or an added residual, and the f32 GEMM
// (FP32 or TF32) with a bias, i.e. every linear layer's forward without GELU. The bias becomes cuBLASLt's
// epilogue and the residual its C input (D = A B + C + bias, one pass), instead of cuBLAS then our
// epilogue kernel: the same numbers up to the order of the f32 additions. Off by default until a GPU run
// shows it correct and faster; the environment variable SANF_CUBLASLT=1 turns it on at start-up.
void set_cublaslt(bool on);
bool cublaslt_enabled();
// How many GEMMs cuBLASLt has run in this process (0 in a build without CUDA): lets a test tell that the
// cuBLASLt path, not the fallback, produced what it checked.
long long cublaslt_gemm_count();

// Whether the environment variable `name` is "1": how SANF_FUSED_ATTENTION and SANF_CUBLASLT turn their
// switches on at start-up.
inline bool env_flag(const char* name) {
  const char* e = std::getenv(name);
  return e != nullptr && std::strcmp(e, "1") == 0;
}

// One of the switches above set for a scope and put back as it was when the scope ends, also on an
// exception: ScopedSwitch lt(set_cublaslt, cublaslt_enabled, true);
class ScopedSwitch {
 public:
  ScopedSwitch(void (*set)(bool), bool (*get)(), bool on) : set_(set), was_(get()) { set_(on); }
  ~ScopedSwitch() { set_(was_); }
  ScopedSwitch(const ScopedSwitch&) = delete;
  ScopedSwitch& operator=(const ScopedSwitch&) = delete;

 private:
  void (*set_)(bool);
  bool was_;
};

}  // namespace sanf::kernels
