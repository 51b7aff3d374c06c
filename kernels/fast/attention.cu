// kernels/fast/attention.cu: the fused bf16 attention of kernels/fast/attention.h.
//
// One block of 4 warps per (batch, head, 64-row query tile); warp w owns query rows 16w .. 16w+15 of the
// tile. Shared memory (n_pad = N rounded up to 16; rows past N are zeros):
//   Ks: n_pad x hd bf16   the head's keys      (K^T is read as a column-major wmma operand)
//   Vs: n_pad x hd bf16   the head's values
//   QS: the tile's queries (64 x hd bf16) first; once every warp holds its query fragments in registers,
//       the same bytes hold each warp's 16 score rows (f32, row stride n_pad), then those rows' weights
//       (bf16, written over the first half of each score row), then the warp's 16 x hd output (f32).
// Per warp: S = Q K^T (n_pad / 16 tiles of 16 x 16, each hd / 16 wmma steps); per row, the lanes read the
// scores of the valid keys into registers (at most 8 each: N <= 256), reduce max and sum across the warp,
// then (after __syncwarp: all reads done) write the bf16 weights, zero for the padding keys; O = P V
// (hd / 16 accumulators over n_pad / 16 steps); O goes through shared memory to the output rows < N.
// 104 KiB of shared memory at N = 197, hd = 64: two blocks per SM on sm_90, one on sm_80.
#include <mma.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "kernels/fast/attention.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda_options.h"

namespace sanf::kernels {

namespace {
std::atomic<bool> g_fused_attention{[] {
  const char* e = std::getenv("SANF_FUSED_ATTENTION");
  return e != nullptr && std::strcmp(e, "1") == 0;
}()};
}  // namespace

void set_fused_attention(bool on) { g_fused_attention = on; }
bool fused_attention_enabled() { return g_fused_attention; }

namespace cuda {

using namespace cuda_detail;
using namespace nvcuda;

namespace {

constexpr int kRows = 64;   // query rows per block
constexpr int kWarps = 4;   // 16 rows each
constexpr int kMaxKeys = 256;

__device__ __forceinline__ __nv_bfloat16 to_bf16(float v) { return __ushort_as_bfloat16(f32_to_bf16_bits(v)); }

// The device's per-block shared memory limit for kernels that opt in (the process uses one device).
int max_shared_per_block() {
  static const int optin = [] {
    int device = 0, v = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    return v;
  }();
  return optin;
}

size_t smem_bytes(int64_t n_pad, int64_t hd) {
  return size_t(2 * n_pad * hd) * 2 + size_t(kRows) * size_t(std::max(n_pad, hd)) * 4;
}

template <int HD, typename O>
__global__ void __launch_bounds__(kWarps * 32) attention_bf16_kernel(const float* __restrict__ qkv,
                                                                      O* __restrict__ out, int N, int H, int n_pad,
                                                                      float scale) {
  extern __shared__ __align__(128) unsigned char smem[];
  __nv_bfloat16* Ks = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* Vs = Ks + n_pad * HD;
  unsigned char* qs = smem + size_t(2 * n_pad * HD) * 2;
  __nv_bfloat16* Qs = reinterpret_cast<__nv_bfloat16*>(qs);

  const int64_t bh = blockIdx.x, b = bh / H, h = bh % H;
  const int q0 = int(blockIdx.y) * kRows;
  const int64_t D = int64_t(H) * HD;
  // qkv element (b, n, s, h, d) is at ((b * N + n) * 3 + s) * D + h * HD + d.
  const float* head = qkv + b * N * 3 * D + h * HD;

  for (int e = threadIdx.x; e < n_pad * HD; e += blockDim.x) {
    const int j = e / HD, d = e % HD;
    float kv = 0.f, vv = 0.f;
    if (j < N) {
      kv = head[(int64_t(j) * 3 + 1) * D + d];
      vv = head[(int64_t(j) * 3 + 2) * D + d];
    }
    Ks[e] = to_bf16(kv);
    Vs[e] = to_bf16(vv);
  }
  for (int e = threadIdx.x; e < kRows * HD; e += blockDim.x) {
    const int r = e / HD, d = e % HD, n = q0 + r;
    Qs[e] = to_bf16(n < N ? head[int64_t(n) * 3 * D + d] * scale : 0.f);
  }
  __syncthreads();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> qf[HD / 16];
#pragma unroll
  for (int kk = 0; kk < HD / 16; ++kk) wmma::load_matrix_sync(qf[kk], Qs + warp * 16 * HD + kk * 16, HD);
  __syncthreads();  // every warp holds its queries: the QS bytes now become score rows
  if (q0 + warp * 16 >= N) return;  // all 16 rows past N (no block-wide barrier follows)

  const int region = 16 * (n_pad > HD ? n_pad : HD);  // floats per warp
  float* Sw = reinterpret_cast<float*>(qs) + warp * region;
  for (int jt = 0; jt < n_pad / 16; ++jt) {
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> sf;
    wmma::fill_fragment(sf, 0.f);
#pragma unroll
    for (int kk = 0; kk < HD / 16; ++kk) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> kf;  // K^T
      wmma::load_matrix_sync(kf, Ks + jt * 16 * HD + kk * 16, HD);
      wmma::mma_sync(sf, qf[kk], kf, sf);
    }
    wmma::store_matrix_sync(Sw + jt * 16, sf, n_pad, wmma::mem_row_major);
  }
  __syncwarp();

  // Softmax of each score row over the N valid keys; the weights (bf16) over the row's first half.
  __nv_bfloat16* Pw = reinterpret_cast<__nv_bfloat16*>(Sw);  // row stride 2 * n_pad
  for (int r = 0; r < 16; ++r) {
    const float* srow = Sw + r * n_pad;
    float p[kMaxKeys / 32];
    float m = -INFINITY;
#pragma unroll
    for (int i = 0; i < kMaxKeys / 32; ++i) {
      const int j = lane + 32 * i;
      p[i] = j < N ? srow[j] : -INFINITY;
      m = MaxOp{}(p[i], m);
    }
    m = warp_reduce(m, MaxOp{});
    double s = 0;
#pragma unroll
    for (int i = 0; i < kMaxKeys / 32; ++i) {
      const int j = lane + 32 * i;
      p[i] = j < N ? expf(p[i] - m) : 0.f;
      s += double(p[i]);
    }
    s = warp_reduce(s, SumOp{});
    const float inv = float(1.0 / s);
    __syncwarp();  // every lane has read its scores of row r before any weight is written over them
    __nv_bfloat16* prow = Pw + r * 2 * n_pad;
#pragma unroll
    for (int i = 0; i < kMaxKeys / 32; ++i) {
      const int j = lane + 32 * i;
      if (j < n_pad) prow[j] = to_bf16(p[i] * inv);  // 0 for the padding keys
    }
  }
  __syncwarp();

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> of[HD / 16];
#pragma unroll
  for (int nt = 0; nt < HD / 16; ++nt) wmma::fill_fragment(of[nt], 0.f);
  for (int kt = 0; kt < n_pad / 16; ++kt) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> pf;
    wmma::load_matrix_sync(pf, Pw + kt * 16, 2 * n_pad);
#pragma unroll
    for (int nt = 0; nt < HD / 16; ++nt) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> vf;
      wmma::load_matrix_sync(vf, Vs + kt * 16 * HD + nt * 16, HD);
      wmma::mma_sync(of[nt], pf, vf, of[nt]);
    }
  }
  __syncwarp();  // the weights are read: the region now takes the 16 x HD output
#pragma unroll
  for (int nt = 0; nt < HD / 16; ++nt) wmma::store_matrix_sync(Sw + nt * 16, of[nt], HD, wmma::mem_row_major);
  __syncwarp();
  for (int e = lane; e < 16 * HD; e += 32) {
    const int r = e / HD, d = e % HD, n = q0 + warp * 16 + r;
    if (n < N) store_from_double(out, (b * N + n) * D + h * HD + d, double(Sw[e]));
  }
}

template <int HD, typename O>
void launch(const float* qkv, O* out, int64_t B, int64_t N, int64_t H, float scale) {
  const int64_t n_pad = (N + 15) / 16 * 16;
  const size_t bytes = smem_bytes(n_pad, HD);
  static std::once_flag once;  // allow more than the default 48 KB of dynamic shared memory, once
  std::call_once(once, [] {
    CUDA_CHECK(cudaFuncSetAttribute(attention_bf16_kernel<HD, O>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    max_shared_per_block()));
  });
  const dim3 grid(unsigned(B * H), unsigned((N + kRows - 1) / kRows));
  attention_bf16_kernel<HD, O><<<grid, kWarps * 32, bytes>>>(qkv, out, int(N), int(H), int(n_pad), scale);
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
  return smem_bytes((N + 15) / 16 * 16, hd) <= size_t(max_shared_per_block());
}

void attention_bf16(const float* qkv, void* out, DType out_dt, int64_t B, int64_t N, int64_t H, int64_t hd,
                    float scale) {
  SANF_CHECK(attention_bf16_fits(N, hd), "[attention_bf16] N = ", N, ", head dim ", hd,
             " is not fused on this device (see kernels/fast/attention.h)");
  SANF_CHECK(B * H <= int64_t(INT32_MAX), "[attention_bf16] too many (batch, head) pairs: ", B * H);
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
