// kernels/fast/flash_attention.cuh: the kernel of the fused bf16 attention (kernels/fast/attention.h), in
// the style of FlashAttention-2: the keys are streamed through shared memory in tiles, and each query row
// keeps a running maximum, a running sum and its output in registers, so the (N x N) scores never exist
// whole anywhere.
//
// Grid: one block of 4 warps per (64-query tile, batch * head), in a one-dimensional grid with the query
// tile varying fastest, so the blocks of one head run side by side and share its keys and values in L2.
// Warp w owns query rows 16w .. 16w+15.
//
// The tensor-core instruction is mma.sync m16n8k16 (bf16 operands, f32 accumulators; sm_80 and later):
// D (16 x 8) = A (16 x 16) B (16 x 8) + C. Its operands live in registers, spread over the warp's 32 lanes
// in a fixed pattern. With g = lane / 4 and t = lane % 4 (PTX ISA, "Matrix Fragments for mma.m16n8k16"):
//   A: 4 registers of two bf16 each: (row g, cols 2t, 2t+1), (g + 8, 2t..), (g, 2t + 8..), (g + 8, 2t + 8..)
//   B: 2 registers: (rows 2t, 2t+1 of col g), (rows 2t + 8, 2t + 9 of col g)
//   C, D: 4 floats: (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1)
// (in a register of two bf16 the lower 16 bits hold the lower column or row). ldmatrix loads such
// registers from shared memory: each of its four 8 x 8 bf16 matrices gives lane l the pair (row l / 4,
// cols 2(l % 4), +1), or with .trans the pair (rows 2(l % 4), +1 of col l / 4); lanes 8i .. 8i + 7 name
// the addresses of matrix i's eight rows.
//
// Per key tile of 64 (kKeys), each warp:
//   S (16 x 64) = Q K^T: 8 column blocks of 8 keys x hd / 16 steps, Q's A registers loaded once, K's B
//     registers by ldmatrix from K stored row-major (a key's hd values in a row: exactly B's column layout);
//   the online softmax: m' = max(m, max_j s_j), each row's output and sum scaled by exp(m - m'),
//     p_j = exp(s_j - m') (keys past N give exp(-inf) = 0), sum += p_j; the row's max is combined over the
//     four lanes that hold the row (shuffles);
//   O (16 x hd) += bf16(P) V: S's accumulator registers are, pairwise, P's A registers (the C layout of
//     two adjacent 8-key blocks is the A layout of their 16 keys), and V's B registers come from ldmatrix
//     .trans on V stored row-major.
// At the end each row's output is divided by its sum (combined over its four lanes) and stored, f32 or
// rounded to bf16, at its head's place in (B, N, H * hd).
//
// Shared memory: K and V tiles, 64 x (hd + 8) bf16 each (34 KiB in all at hd = 128, 18 KiB at 64): the 8
// extra columns make the eight rows an ldmatrix phase reads start in different banks. Q passes through the
// K tile once, at the start. Tiles are loaded as float4 (the qkv rows are 16-byte aligned: attention_bf16
// checks), rounded to bf16 on the way in, zeros past N.
//
// The kernel is in this header, apart from its launch (kernels/fast/attention.cu), so that a test can run it
// on the CPU: with SANF_WARP_EMULATION defined, the includer supplies threadIdx, blockIdx, __syncthreads,
// __shfl_xor_sync, float4 and friends, ldmatrix_x4, ldmatrix_x4_trans and mma_bf16, executing every lane
// of a block as a host thread and the warp-wide instructions from the fragment layouts above
// (tests/testing/warp_emulator.h; tests/kernels/test_flash_emulated.cpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/dtype.h"

#ifdef SANF_WARP_EMULATION
#define SANF_UNROLL
#else
#define SANF_UNROLL _Pragma("unroll")
#endif

namespace sanf::kernels::flash_detail {

#ifndef SANF_WARP_EMULATION
__device__ __forceinline__ uint32_t smem_address(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}

// The bf16 mma and cvt instructions need sm_80; compiled for an older architecture the kernel traps (the
// library's default architectures are 80, 86 and 90, and attention_bf16_fits refuses a device below 8.0).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define SANF_FLASH_SM80_ONLY(...) __trap()
#else
#define SANF_FLASH_SM80_ONLY(...) __VA_ARGS__
#endif

// "memory": the shared-memory stores before the barrier that precedes an ldmatrix stay before it.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  SANF_FLASH_SM80_ONLY(asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                                    : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                                    : "r"(smem_address(row))
                                    : "memory"));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  SANF_FLASH_SM80_ONLY(asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                                    : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                                    : "r"(smem_address(row))
                                    : "memory"));
}

// c += a b, one m16n8k16 tile.
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  SANF_FLASH_SM80_ONLY(asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1)));
}

#endif  // SANF_WARP_EMULATION

constexpr int kRows = 64;  // query rows per block
constexpr int kWarps = 4;  // 16 rows each
constexpr int kKeys = 64;  // keys per tile
constexpr int kPad = 8;    // extra bf16 per shared-memory row
static_assert(kRows == kKeys, "Q passes through the K tile, which holds kKeys rows");

// Two f32 values rounded to bf16 (nearest, ties to even: to(x, BF16)'s rounding of every finite value) in
// one register, lo in the lower 16 bits; on the GPU one cvt.rn.bf16x2.f32 (its first source goes to the
// upper half), in the emulation the library's rounding. And exp: the GPU's fast ex2-based __expf (a few ulp;
// the bf16 rounding of the weights that follows is 2^-9), std::exp in the emulation.
#ifdef SANF_WARP_EMULATION
inline uint32_t pack_bf16(float lo, float hi) {
  return uint32_t(f32_to_bf16_bits(lo)) | (uint32_t(f32_to_bf16_bits(hi)) << 16);
}
inline float fast_exp(float x) { return std::exp(x); }
#else
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  uint32_t r = 0;
  SANF_FLASH_SM80_ONLY(asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo)));
  return r;
}
__device__ __forceinline__ float fast_exp(float x) { return __expf(x); }
#endif

// Rows [row0, row0 + 64) of one of q, k, v (which = 0, 1, 2) of head `head` into tile (64 x (HD + kPad)
// bf16), multiplied by `scale` in f32 before the rounding, zeros for rows at or past N. 16 float4 per row
// at HD = 64: thread i takes float4 i, i + 128, ...
template <int HD>
__device__ __forceinline__ void load_tile(uint16_t* tile, const float* head, int64_t D, int which, int row0,
                                          int N, float scale) {
  constexpr int kVec = HD / 4;  // float4 per row
  for (int e = threadIdx.x; e < kRows * kVec; e += kWarps * 32) {
    const int r = e / kVec, c = (e % kVec) * 4, n = row0 + r;
    float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
    if (n < N) x = *reinterpret_cast<const float4*>(head + (int64_t(n) * 3 + which) * D + c);
    uint2 packed;
    packed.x = pack_bf16(x.x * scale, x.y * scale);
    packed.y = pack_bf16(x.z * scale, x.w * scale);
    *reinterpret_cast<uint2*>(tile + r * (HD + kPad) + c) = packed;
  }
}

template <int HD, typename O>
__global__ void __launch_bounds__(kWarps * 32) flash_attention_bf16_kernel(const float* __restrict__ qkv,
                                                                           O* __restrict__ out, int N, int H,
                                                                           int tiles, float scale) {
  constexpr int kLd = HD + kPad;
  static_assert(2 * kKeys * kLd * 2 <= 48 * 1024, "K and V tiles beyond the 48 KiB of static shared memory");
  __shared__ __align__(16) uint16_t Ks[kKeys * kLd];
  __shared__ __align__(16) uint16_t Vs[kKeys * kLd];

  const int64_t bh = blockIdx.x / unsigned(tiles), b = bh / H, h = bh % H;
  const int q0 = int(blockIdx.x % unsigned(tiles)) * kRows;
  const int64_t D = int64_t(H) * HD;
  // qkv element (b, n, s, h, d) is at ((b * N + n) * 3 + s) * D + h * HD + d.
  const float* head = qkv + b * N * 3 * D + h * HD;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const bool active = q0 + warp * 16 < N;  // a warp whose 16 rows are all past N only keeps the barriers

  // Q (scaled, rounded) through the K tile into A registers: for step kk, matrix i of the ldmatrix is rows
  // (i % 2) * 8 .. +7 and cols kk * 16 + (i / 2) * 8 .. +7 of the warp's 16 rows.
  load_tile<HD>(Ks, head, D, 0, q0, N, scale);
  __syncthreads();
  uint32_t qf[HD / 16][4];
  {
    const int i = lane / 8, r = warp * 16 + (i % 2) * 8 + lane % 8;
SANF_UNROLL
    for (int kk = 0; kk < HD / 16; ++kk) ldmatrix_x4(qf[kk], Ks + r * kLd + kk * 16 + (i / 2) * 8);
  }
  __syncthreads();  // every warp holds its queries: the tile takes keys now

  float o[HD / 8][4];  // rows g and g + 8, cols 8 dt + 2t, +1
SANF_UNROLL
  for (int dt = 0; dt < HD / 8; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // rows g, g + 8: running max, this lane's sum

  for (int k0 = 0; k0 < N; k0 += kKeys) {
    load_tile<HD>(Ks, head, D, 1, k0, N, 1.f);
    load_tile<HD>(Vs, head, D, 2, k0, N, 1.f);
    __syncthreads();
    if (active) {
      // S = Q K^T. ldmatrix matrix i: keys (nt + i / 2) * 8 .. +7, cols kk * 16 + (i % 2) * 8 .. +7, giving
      // B's two registers for key block nt, then for nt + 1.
      float s[kKeys / 8][4];
SANF_UNROLL
      for (int nt = 0; nt < kKeys / 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
      const int i = lane / 8;
SANF_UNROLL
      for (int nt = 0; nt < kKeys / 8; nt += 2) {
SANF_UNROLL
        for (int kk = 0; kk < HD / 16; ++kk) {
          uint32_t kf[4];
          ldmatrix_x4(kf, Ks + ((nt + i / 2) * 8 + lane % 8) * kLd + kk * 16 + (i % 2) * 8);
          mma_bf16(s[nt], qf[kk], kf[0], kf[1]);
          mma_bf16(s[nt + 1], qf[kk], kf[2], kf[3]);
        }
      }
      // The online softmax. Lane (g, t) holds keys k0 + 8 nt + 2t, +1 of rows g (s[.][0..1]) and g + 8
      // (s[.][2..3]); the row's other keys are in lanes g * 4 .. g * 4 + 3 (xor 1 and 2).
      float mx[2] = {m[0], m[1]};
SANF_UNROLL
      for (int nt = 0; nt < kKeys / 8; ++nt) {
SANF_UNROLL
        for (int c = 0; c < 4; ++c) {
          if (k0 + nt * 8 + 2 * t + (c & 1) >= N) s[nt][c] = -INFINITY;
          mx[c / 2] = fmaxf(mx[c / 2], s[nt][c]);
        }
      }
SANF_UNROLL
      for (int r = 0; r < 2; ++r) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        // A row whose scores so far are all -inf (only for -inf inputs: k0 < N, so some key of the tile is
        // unmasked) keeps exp's argument finite with 0 in place of the max: no -inf - -inf.
        if (mx[r] == -INFINITY) mx[r] = 0.f;
        const float alpha = fast_exp(m[r] - mx[r]);  // 0 on the first tile (m = -inf)
        l[r] *= alpha;
SANF_UNROLL
        for (int dt = 0; dt < HD / 8; ++dt) o[dt][2 * r] *= alpha, o[dt][2 * r + 1] *= alpha;
        m[r] = mx[r];
      }
SANF_UNROLL
      for (int nt = 0; nt < kKeys / 8; ++nt) {
SANF_UNROLL
        for (int c = 0; c < 4; ++c) {
          s[nt][c] = fast_exp(s[nt][c] - m[c / 2]);
          l[c / 2] += s[nt][c];
        }
      }
      // O += bf16(P) V over the tile's keys, 16 at a time (kk): P's A registers are key blocks 2kk and
      // 2kk + 1 of S. ldmatrix .trans matrix i: keys kk * 16 + (i % 2) * 8 .. +7, cols (dt + i / 2) * 8 ..
      // +7 of V, giving B's two registers for column block dt, then dt + 1.
SANF_UNROLL
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        const uint32_t pf[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                                pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
SANF_UNROLL
        for (int dt = 0; dt < HD / 8; dt += 2) {
          uint32_t vf[4];
          ldmatrix_x4_trans(vf, Vs + (kk * 16 + (i % 2) * 8 + lane % 8) * kLd + (dt + i / 2) * 8);
          mma_bf16(o[dt], pf, vf[0], vf[1]);
          mma_bf16(o[dt + 1], pf, vf[2], vf[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with the tile before the next one is loaded over it
  }
  if (!active) return;

SANF_UNROLL
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    const int n = q0 + warp * 16 + g + 8 * r;
    if (n >= N) continue;
    const float inv = 1.f / l[r];
    O* row = out + (b * N + n) * D + h * HD;
SANF_UNROLL
    for (int dt = 0; dt < HD / 8; ++dt) {
      const float x0 = o[dt][2 * r] * inv, x1 = o[dt][2 * r + 1] * inv;
      const int d = dt * 8 + 2 * t;
      if constexpr (std::is_same_v<O, float>) {
        *reinterpret_cast<float2*>(row + d) = make_float2(x0, x1);
      } else {
        *reinterpret_cast<uint32_t*>(row + d) = pack_bf16(x0, x1);
      }
    }
  }
}

}  // namespace sanf::kernels::flash_detail
