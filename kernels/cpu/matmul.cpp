// kernels/cpu/matmul.cpp: GEMM on the CPU: the reference triple loop, and the blocked, packed kernel.
//
// gemm_reference is the definition: C_b[i][j] = alpha * sum_k op(A_b)[i][k] op(B_b)[k][j] + beta * C_b[i][j],
// batch by batch, summed in double.
//
// gemm is the same arithmetic arranged for the memory hierarchy (Goto & van de Geijn, "Anatomy of
// high-performance matrix multiplication", 2008; the loop nest of BLIS):
//
//   for jc in N by NC:                       B panel  op(B)[pc:pc+KC, jc:jc+NC]  packed, lives in L3
//     for pc in K by KC:
//       pack the B panel into NR-wide micro-panels (all threads share it)
//       for ic in M by MC (threads split here):  A block op(A)[ic:ic+MC, pc:pc+KC] packed, lives in L2
//         for jr in NC by NR:                  one B micro-panel (KC x NR) stays in L1 ...
//           for ir in MC by MR:                ... while the A micro-panels (MR x KC) stream past it
//             micro-kernel: an MR x NR tile of C += A micro-panel @ B micro-panel
//
// Packing copies each operand once per block into the order the micro-kernel reads it (k-major, MR or NR
// wide, zero-padded at the edges), reading transposed or strided operands directly, so the micro-kernel
// sees unit-stride data and needs no edge cases except when it writes C. A row-major A (not transposed:
// linear's x, attention's q, and its weights in A V) is not packed: the micro-kernel broadcasts from its
// MR rows in place (six unit-stride streams over the cache lines the packed panel would occupy), which
// saves a scalar transposing copy of A per block. The micro-kernel keeps the MR x NR tile of C in
// registers for the whole KC loop: per k it loads one row of the B micro-panel (NR values), broadcasts MR
// values of A, and does MR x NR multiply-adds. With AVX2 and f32 that is 6 x 16 =
// 12 ymm accumulators + 2 B vectors + 1 broadcast (15 of the 16 registers); f64 uses 6 x 8 (same registers).
// AVX-512 has 32 registers of 16 floats: its f32 tile is 12 x 32 = 24 zmm accumulators + 2 + 1 (27 of 32),
// per k 2 loads and 12 broadcasts for 24 FMAs. Both f32 tiles are the same source (a TileF32 / TileF32Wide
// parameter), and GCC's x86-64-v4 code for the wide one is the same clean loop (2 vmovups, 12
// vbroadcastss, 24 vfmadd231ps zmm); compiled for AVX2 the wide tile spills (16 registers) and runs at a
// third of the narrow one's speed, so it is chosen only where the CPU has AVX-512F.
// It is written as plain loops over a local array; `omp simd` on the NR loop asks GCC to vectorise that
// loop rather than the reduction over k, and GCC then keeps the accumulators in registers (check with
// `objdump -d | grep vfmadd`: the inner loop is 12 vfmadd231ps and nothing else but loads).
//
// Epilogue (kernels/matmul.h): the bias is added where the first K block writes C (in the micro-kernel's
// write-out); the GELU is applied after the last K block, to each micro-panel column of an M block (m x NR)
// right after it is written, while it is in L1.
//
// ISA: the micro-kernel is compiled three times (target_clones, SANF_CPU_CLONES) and the loader picks one by CPUID:
// x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA: Haswell and later, Zen), and the baseline; gemm picks the
// f32 tile by CPUID too (avx512f: 12 x 32, otherwise 6 x 16; set_gemm_tile forces one, for the tests). The clones are
// named by ISA level, not "arch=haswell": GCC selects an arch= clone by CPU model, so a Haswell clone is
// never picked on an AMD Zen, while x86-64-v3 is selected by its feature bits.
//
// Block sizes (elements; the Tile structs below), for 32 KiB L1d, 512 KiB-1 MiB L2 per core and a shared L3:
//   f32 (6 x 16 tile, and the 12 x 32 AVX-512 tile): KC = 768, MC = 72, NC = 3072. K up to 768 (a ViT-B
//   width) is one block, because every K block after the first re-reads and re-writes C and costs two
//   team barriers; the B micro-panel (KC x NR = 48 KiB) then streams from L2 rather than sitting in L1,
//   which L2's bandwidth covers (16 floats per 12 FMAs). The A block (MC x KC = 216 KiB) stays in L2; the
//   B panel (KC x NC = 9 MiB) is shared by the threads in L3. How these were chosen is measured in
//   docs/PERFORMANCE.md.
//   f64 (gradient checks, not speed): KC = 256, MC = 96, NC = 1536: a 16 KiB B micro-panel in L1.
// With several threads the number of M blocks is rounded up to a multiple of the thread count, their
// height shrunk to match (a multiple of MR), so that no thread idles through a last, partial round; when
// there are fewer M blocks than threads (short, wide C) the N range is split as well. The
// blocks are handed out dynamically (first come, first served), so a thread that other programs keep off
// its core holds up the others by one block, not by its whole share. Each C element is summed in the same
// order whatever the thread count or the thread that computes it, so results do not depend on either.
//
// Threads: batches of independent matrices are shared out one matrix per thread; a single large matrix is
// shared out by blocks as above; problems under kParallelWork multiply-adds run on the calling thread.
// A batch stride of 0 for C means every batch writes the same matrix; those batches run in order, so
// C accumulates exactly as in the reference (with beta = 1, C += sum over the batch).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <type_traits>

#include "kernels/cpu/loops.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/matmul.h"

namespace sanf::kernels::cpu {

namespace {

// ---- the definition ------------------------------------------------------------------------------------

template <typename T>
void gemm_reference_typed(const GemmArgs& g) {
  for (int64_t b = 0; b < g.batch; ++b) {
    const T* A = static_cast<const T*>(g.A) + b * g.stride_a;
    const T* B = static_cast<const T*>(g.B) + b * g.stride_b;
    T* C = static_cast<T*>(g.C) + b * g.stride_c;
    for (int64_t i = 0; i < g.M; ++i)
      for (int64_t j = 0; j < g.N; ++j) gemm_element(g, A, B, C, i, j);
  }
}

// ---- block sizes (see the header comment) ---------------------------------------------------------------

// A tile names the micro-kernel's shape (MR x NR, see the header comment) and the block sizes around it.
// f32 has two: 6 x 16 for 16 vector registers (AVX2: 12 ymm accumulators), and 12 x 32 for 32 (AVX-512:
// 24 zmm accumulators, 2 B vectors and a broadcast). Each is compiled for every ISA level like the rest
// (SANF_CPU_CLONES), so either runs on any CPU; gemm picks the wide one where the CPU has AVX-512F
// (set_gemm_tile overrides that, for the tests and benchmarks). Only the block's register shape differs:
// KC, MC and NC are the measured ones of the narrow tile (MC and NC are multiples of both MRs and NRs).
struct TileF32 {
  using T = float;
  static constexpr int MR = 6, NR = 16;
  static constexpr int64_t KC = 768, MC = 72, NC = 3072;
};
struct TileF32Wide {
  using T = float;
  static constexpr int MR = 12, NR = 32;
  static constexpr int64_t KC = 768, MC = 72, NC = 3072;
};
struct TileF64 {
  using T = double;
  static constexpr int MR = 6, NR = 8;
  static constexpr int64_t KC = 256, MC = 96, NC = 1536;
};
template <typename Tile>
constexpr bool tile_ok = Tile::MC % Tile::MR == 0 && Tile::NC % Tile::NR == 0 && Tile::NR % 8 == 0;
static_assert(tile_ok<TileF32> && tile_ok<TileF32Wide> && tile_ok<TileF64>);

// Below this many multiply-adds (M*N*K summed over the batch) one thread is faster than waking the others.
constexpr double kParallelWork = 64.0 * 64.0 * 64.0;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// ---- micro-kernel --------------------------------------------------------------------------------------

// C[0:m, 0:n] = alpha * (a @ b) + beta * C[0:m, 0:n] + bias[0:n], where b is a kc x NR micro-panel
// (b[k*NR + j]) and a the MR x kc block of op(A): a packed micro-panel stored k-major (a[k*MR + i]), or,
// with kDirectA, rows of A read in place (row i at a + i*lda; rows past m repeat row m-1, so nothing past
// A is read). The full MR x NR product is computed (the B panel is zero-padded); only the valid m x n
// corner is written. beta == 0: C is not read; bias == nullptr: no bias.
// With ct (C transposed: the swapped small-M product, see gemm_typed) the tile's element (i, j) lives at
// c[j*ldc + i] and its bias is bias[i]; otherwise at c[i*ldc + j] with bias[j].
template <typename T, int MR, int NR, bool kDirectA>
[[gnu::always_inline]] inline void micro_tile(int64_t kc, const T* __restrict a, int64_t lda, const T* __restrict b,
                                              T* __restrict c, int64_t ldc, bool ct, int m, int n, T alpha, T beta,
                                              const T* __restrict bias) {
  // kc >= 1 always (K == 0 never reaches the micro-kernel). Saying so lets GCC drop the zero-fill of acc's
  // stack copy (a rep stos of MR*NR values per call, 20% of an attention-sized GEMM): the loop's registers
  // start at zero and are stored whole after it. (The f64 and AVX-512 clones still have it.)
  if (kc < 1) __builtin_unreachable();
  // C's tile is read (beta != 0: every K block after the first) and written only after the k loop; ask
  // for its lines now, so they arrive while the loop runs (C is too big for the caches: an L3 or DRAM
  // latency per row otherwise).
  if (!ct) {
    for (int i = 0; i < MR; ++i) {
      __builtin_prefetch(c + i * ldc, 1);
      __builtin_prefetch(c + i * ldc + NR - 1, 1);
    }
  }
  T acc[MR][NR] = {};
  if constexpr (kDirectA) {
    const T* ar[MR];
    for (int i = 0; i < MR; ++i) ar[i] = a + (i < m ? i : m - 1) * lda;
    for (int64_t k = 0; k < kc; ++k) {
      for (int i = 0; i < MR; ++i) {
        const T ai = ar[i][k];
#pragma omp simd
        for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
      }
      b += NR;
    }
  } else {
    for (int64_t k = 0; k < kc; ++k) {
      for (int i = 0; i < MR; ++i) {
        const T ai = a[i];
#pragma omp simd
        for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
      }
      a += MR;
      b += NR;
    }
  }
  if (ct) {  // a few rows of the true C: element by element
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        T& cij = c[j * ldc + i];
        const T v = beta == T(0) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * cij;
        cij = bias != nullptr ? v + bias[i] : v;
      }
    return;
  }
  if (m == MR && n == NR) {
    T brow[NR] = {};
    if (bias != nullptr)
      for (int j = 0; j < NR; ++j) brow[j] = bias[j];
    for (int i = 0; i < MR; ++i) {
      T* ci = c + i * ldc;
      if (beta == T(0)) {
#pragma omp simd
        for (int j = 0; j < NR; ++j) ci[j] = alpha * acc[i][j] + brow[j];
      } else {
#pragma omp simd
        for (int j = 0; j < NR; ++j) ci[j] = alpha * acc[i][j] + beta * ci[j] + brow[j];
      }
    }
    return;
  }
  for (int i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    for (int j = 0; j < n; ++j) {
      const T v = beta == T(0) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * ci[j];
      ci[j] = bias != nullptr ? v + bias[j] : v;
    }
  }
}

// The micro-kernel of each tile, compiled per ISA level (the tile is a tag: an empty struct).
#define SANF_MICRO_KERNELS(Tile)                                                                                 \
  SANF_CPU_CLONES void micro_kernel(Tile, int64_t kc, const Tile::T* a, const Tile::T* b, Tile::T* c,           \
                                    int64_t ldc, bool ct, int m, int n, Tile::T alpha, Tile::T beta,             \
                                    const Tile::T* bias) {                                                       \
    micro_tile<Tile::T, Tile::MR, Tile::NR, false>(kc, a, 0, b, c, ldc, ct, m, n, alpha, beta, bias);            \
  }                                                                                                              \
  SANF_CPU_CLONES void micro_kernel_rows(Tile, int64_t kc, const Tile::T* a, int64_t lda, const Tile::T* b,     \
                                         Tile::T* c, int64_t ldc, bool ct, int m, int n, Tile::T alpha,          \
                                         Tile::T beta, const Tile::T* bias) {                                    \
    micro_tile<Tile::T, Tile::MR, Tile::NR, true>(kc, a, lda, b, c, ldc, ct, m, n, alpha, beta, bias);           \
  }
SANF_MICRO_KERNELS(TileF32)
SANF_MICRO_KERNELS(TileF32Wide)
SANF_MICRO_KERNELS(TileF64)
#undef SANF_MICRO_KERNELS

// The GELU of the epilogue, over an m x n strip of C (one micro-panel column of an M block, just written
// and still in L1): in f32 the vectorisable kernels/cpu/vec_math.h (as the gelu op), in f64 the exact
// formula of kernels/elementwise_math.h.
// Applied to the strip rather than inside the micro-kernel's write-out, where the few independent
// vectors of one tile left the long exp / division chains exposed (it was slower than a separate pass).
template <int NR, typename T, typename F>
[[gnu::always_inline]] inline void strip_map(T* c, int64_t ldc, int64_t m, int64_t n, F f) {
  if (n == NR) {  // a whole micro-panel column: a fixed trip count, so no peeling or remainder loop
    for (int64_t i = 0; i < m; ++i, c += ldc)
      for (int j = 0; j < NR; ++j) c[j] = f(c[j]);
    return;
  }
  for (int64_t i = 0; i < m; ++i, c += ldc)
    for (int64_t j = 0; j < n; ++j) c[j] = f(c[j]);
}
SANF_CPU_CLONES void gelu_strip(TileF32, float* c, int64_t ldc, int64_t m, int64_t n) {
  strip_map<TileF32::NR>(c, ldc, m, n, [](float v) { return vmath::gelu_f32(v); });
}
SANF_CPU_CLONES void gelu_strip(TileF32Wide, float* c, int64_t ldc, int64_t m, int64_t n) {
  strip_map<TileF32Wide::NR>(c, ldc, m, n, [](float v) { return vmath::gelu_f32(v); });
}
SANF_CPU_CLONES void gelu_strip(TileF64, double* c, int64_t ldc, int64_t m, int64_t n) {
  strip_map<TileF64::NR>(c, ldc, m, n, [](double v) { return unary_value(UnaryOp::Gelu, v, 0.0); });
}

// ---- packing -------------------------------------------------------------------------------------------

// op(A)[i0 : i0+mc, p0 : p0+kc] -> ceil(mc/MR) micro-panels, each MR x kc stored k-major
// (ap[k*MR + i]); rows past mc are zero. op(A)[i][k] is A[i*lda + k], or A[k*lda + i] with trans.
template <typename Tile, typename T = typename Tile::T>
void pack_a(const T* A, int64_t lda, bool trans, int64_t i0, int64_t mc, int64_t p0, int64_t kc, T* ap) {
  constexpr int MR = Tile::MR;
  for (int64_t ir = 0; ir < mc; ir += MR, ap += MR * kc) {
    const int m = int(std::min<int64_t>(MR, mc - ir));
    for (int64_t k = 0; k < kc; ++k) {
      T* dst = ap + k * MR;
      if (trans) {
        const T* src = A + (p0 + k) * lda + i0 + ir;  // MR consecutive elements of row p0+k
        for (int i = 0; i < m; ++i) dst[i] = src[i];
      } else {
        const T* src = A + (i0 + ir) * lda + p0 + k;  // column p0+k of MR rows
        for (int i = 0; i < m; ++i) dst[i] = src[i * lda];
      }
      for (int i = m; i < MR; ++i) dst[i] = T(0);
    }
  }
}

// op(B)[p0 : p0+kc, j0 : j0+n] (n <= NR) -> one kc x NR micro-panel stored k-major (bp[k*NR + j]);
// columns past n are zero. op(B)[k][j] is B[k*ldb + j], or B[j*ldb + k] with trans. A whole panel
// (n == NR) takes loops with a fixed trip count (vector copies, no remainder or padding): the packing of
// the small attention GEMMs' B is a fifth of their time otherwise.
template <int NR, typename T>
[[gnu::always_inline]] inline void pack_b_t(const T* B, int64_t ldb, bool trans, int64_t p0, int64_t kc, int64_t j0,
                                            int n, T* bp) {
  if (n == NR) {
    if (trans) {
      for (int64_t k = 0; k < kc; ++k) {
        const T* src = B + j0 * ldb + p0 + k;
        for (int j = 0; j < NR; ++j) bp[k * NR + j] = src[j * ldb];
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        const T* src = B + (p0 + k) * ldb + j0;
        for (int j = 0; j < NR; ++j) bp[k * NR + j] = src[j];
      }
    }
    return;
  }
  for (int64_t k = 0; k < kc; ++k) {
    T* dst = bp + k * NR;
    if (trans) {
      const T* src = B + j0 * ldb + p0 + k;  // row p0+k of op(B) is a column of the stored B
      for (int j = 0; j < n; ++j) dst[j] = src[j * ldb];
    } else {
      const T* src = B + (p0 + k) * ldb + j0;
      for (int j = 0; j < n; ++j) dst[j] = src[j];
    }
    for (int j = n; j < NR; ++j) dst[j] = T(0);
  }
}
SANF_CPU_CLONES void pack_b_plain(TileF32, const float* B, int64_t ldb, bool trans, int64_t p0, int64_t kc,
                                  int64_t j0, int n, float* bp) {
  pack_b_t<TileF32::NR>(B, ldb, trans, p0, kc, j0, n, bp);
}
SANF_CPU_CLONES void pack_b_plain(TileF32Wide, const float* B, int64_t ldb, bool trans, int64_t p0, int64_t kc,
                                  int64_t j0, int n, float* bp) {
  pack_b_t<TileF32Wide::NR>(B, ldb, trans, p0, kc, j0, n, bp);
}

// A whole f32 panel of a transposed B (linear's weight W, N x K: 16 rows of W become a k-major 16-wide
// panel) is a 16 x kc transpose. Element by element that is a strided gather of one float per load, and
// for a linear layer with few rows (the flow's MLPs: 32 rows) packing W was most of the GEMM's time. With
// AVX2 it is done 8 x 8 at a time: 8 loads of 8 consecutive k from 8 rows, the classic unpack / shuffle /
// permute2f128 transpose, 8 stores. Chosen at run time (CPUID); the plain loop serves other CPUs, ragged
// panels and the k tail.
__attribute__((target("avx2"))) void transpose8x8(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r0 = _mm256_loadu_ps(src + 0 * lds), r1 = _mm256_loadu_ps(src + 1 * lds);
  __m256 r2 = _mm256_loadu_ps(src + 2 * lds), r3 = _mm256_loadu_ps(src + 3 * lds);
  __m256 r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds);
  __m256 r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r0 = _mm256_permute2f128_ps(u0, u4, 0x20), r1 = _mm256_permute2f128_ps(u1, u5, 0x20);
  r2 = _mm256_permute2f128_ps(u2, u6, 0x20), r3 = _mm256_permute2f128_ps(u3, u7, 0x20);
  r4 = _mm256_permute2f128_ps(u0, u4, 0x31), r5 = _mm256_permute2f128_ps(u1, u5, 0x31);
  r6 = _mm256_permute2f128_ps(u2, u6, 0x31), r7 = _mm256_permute2f128_ps(u3, u7, 0x31);
  _mm256_storeu_ps(dst + 0 * ldd, r0), _mm256_storeu_ps(dst + 1 * ldd, r1);
  _mm256_storeu_ps(dst + 2 * ldd, r2), _mm256_storeu_ps(dst + 3 * ldd, r3);
  _mm256_storeu_ps(dst + 4 * ldd, r4), _mm256_storeu_ps(dst + 5 * ldd, r5);
  _mm256_storeu_ps(dst + 6 * ldd, r6), _mm256_storeu_ps(dst + 7 * ldd, r7);
}

template <int NR>
__attribute__((target("avx2"))) void pack_b_trans_avx2(const float* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
                                                      float* bp) {
  const float* src = B + j0 * ldb + p0;  // row j of the panel is W's row j0 + j, from column p0
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8)
    for (int j = 0; j < NR; j += 8)  // panel columns j..j+7
      transpose8x8(src + j * ldb + k, ldb, bp + k * NR + j, NR);
  for (; k < kc; ++k)
    for (int j = 0; j < NR; ++j) bp[k * NR + j] = src[j * ldb + k];
}

template <typename Tile>
void pack_b(Tile tile, const float* B, int64_t ldb, bool trans, int64_t p0, int64_t kc, int64_t j0, int n,
            float* bp) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (trans && n == Tile::NR && avx2)
    pack_b_trans_avx2<Tile::NR>(B, ldb, p0, kc, j0, bp);
  else
    pack_b_plain(tile, B, ldb, trans, p0, kc, j0, n, bp);
}
SANF_CPU_CLONES void pack_b(TileF64, const double* B, int64_t ldb, bool trans, int64_t p0, int64_t kc, int64_t j0,
                            int n, double* bp) {
  pack_b_t<TileF64::NR>(B, ldb, trans, p0, kc, j0, n, bp);
}

// A grow-only, 64-byte aligned scratch buffer. Each thread has one for A blocks and one for B panels
// (thread_local), so repeated calls neither allocate nor fault in fresh pages.
class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { std::free(p_); }
  template <typename T>
  T* get(int64_t n) {
    const size_t need = size_t(round_up(std::max<int64_t>(n, 1) * int64_t(sizeof(T)), 64));
    if (need > bytes_) {
      std::free(p_);
      p_ = std::aligned_alloc(64, need);
      SANF_CHECK(p_ != nullptr, "[matmul] out of memory for a ", need, "-byte packing buffer");
      bytes_ = need;
    }
    return static_cast<T*>(p_);
  }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};
thread_local Scratch a_scratch, b_scratch;

// ---- one matrix ----------------------------------------------------------------------------------------

// C = alpha op(A) op(B) + beta C for one matrix (K > 0), shared by up to `threads` OpenMP threads.
template <typename Bl, typename T = typename Bl::T>
void gemm_blocked(const GemmArgs& g, const T* A, const T* B, T* C, int threads, bool ct) {
  constexpr int MR = Bl::MR, NR = Bl::NR;
  constexpr Bl tile{};
  const int64_t M = g.M, N = g.N, K = g.K;
  const T alpha = T(g.alpha), beta = T(g.beta);
  const T* bias = static_cast<const T*>(g.bias);
  const bool direct_a = !g.trans_a;  // row-major A: the micro-kernel reads its rows in place, no packing

  // Work split: M blocks of at most MC rows, evened out to a multiple of the thread count; with fewer
  // blocks than threads, each block's columns are split into n_split chunks too.
  int64_t m_blocks = ceil_div(M, Bl::MC), n_split = 1;
  if (threads > 1) {
    if (m_blocks >= threads)
      m_blocks = round_up(m_blocks, threads);
    else
      n_split = ceil_div(threads, m_blocks);
  }
  const int64_t mc = round_up(ceil_div(M, m_blocks), MR);
  m_blocks = ceil_div(M, mc);
  const int64_t kc_max = std::min(Bl::KC, K);
  T* bp = b_scratch.get<T>(kc_max * round_up(std::min(Bl::NC, N), NR));  // shared by the team

  // One (jc, pc) step: pack B panel pieces q, and run tasks t (an M block, or a share of its columns).
  struct Step {
    int64_t jc, nc, n_panels, chunk, pc, kc;
    T beta_k;
    const T* bias_k;
    bool gelu_k;
  };
  auto step_at = [&](int64_t jc, int64_t pc) {
    Step st;
    st.jc = jc, st.nc = std::min(Bl::NC, N - jc), st.n_panels = ceil_div(st.nc, NR);
    st.chunk = ceil_div(st.n_panels, n_split) * NR;  // columns per task, whole micro-panels
    st.pc = pc, st.kc = std::min(Bl::KC, K - pc);
    st.beta_k = pc == 0 ? beta : T(1);      // later K blocks add onto the first
    st.bias_k = pc == 0 ? bias : nullptr;   // the bias joins with the first K block, ...
    st.gelu_k = g.gelu && pc + st.kc >= K;  // ... the activation with the last
    return st;
  };
  auto pack_panel = [&](const Step& st, int64_t q) {
    pack_b(tile, B, g.ldb, g.trans_b, st.pc, st.kc, st.jc + q * NR, int(std::min<int64_t>(NR, st.nc - q * NR)),
           bp + q * NR * st.kc);
  };
  auto run_task = [&](const Step& st, int64_t t, T* ap) {
    const int64_t i0 = (t / n_split) * mc, m = std::min(mc, M - i0);
    const int64_t j_lo = (t % n_split) * st.chunk, j_hi = std::min(st.nc, j_lo + st.chunk);
    if (j_lo >= j_hi) return;
    if (!direct_a) pack_a<Bl>(A, g.lda, g.trans_a, i0, m, st.pc, st.kc, ap);
    for (int64_t jr = j_lo; jr < j_hi; jr += NR) {
      const int n = int(std::min<int64_t>(NR, j_hi - jr));
      for (int64_t ir = 0; ir < m; ir += MR) {
        // C's element (i, j) is at C[i*ldc + j], or at C[j*ldc + i] when C is transposed (ct).
        const int64_t ci = i0 + ir, cj = st.jc + jr;
        T* c_tile = ct ? C + cj * g.ldc + ci : C + ci * g.ldc + cj;
        const T* bias_t = st.bias_k ? st.bias_k + (ct ? ci : cj) : nullptr;
        const int mr = int(std::min<int64_t>(MR, m - ir));
        if (direct_a)
          micro_kernel_rows(tile, st.kc, A + ci * g.lda + st.pc, g.lda, bp + jr * st.kc, c_tile, g.ldc, ct, mr, n, alpha,
                            st.beta_k, bias_t);
        else
          micro_kernel(tile, st.kc, ap + ir * st.kc, bp + jr * st.kc, c_tile, g.ldc, ct, mr, n, alpha, st.beta_k, bias_t);
      }
      if (st.gelu_k) {
        if (ct)  // the strip is n rows (from row jc + jr) by m columns (from i0) of the true C
          gelu_strip(tile, C + (st.jc + jr) * g.ldc + i0, g.ldc, n, m);
        else
          gelu_strip(tile, C + i0 * g.ldc + st.jc + jr, g.ldc, m, n);
      }
    }
  };

  if (threads <= 1) {  // no OpenMP construct at all (this may run inside a batch-parallel loop)
    T* ap = direct_a ? nullptr : a_scratch.get<T>(mc * kc_max);
    for (int64_t jc = 0; jc < N; jc += Bl::NC)
      for (int64_t pc = 0; pc < K; pc += Bl::KC) {
        const Step st = step_at(jc, pc);
        for (int64_t q = 0; q < st.n_panels; ++q) pack_panel(st, q);
        for (int64_t t = 0; t < m_blocks * n_split; ++t) run_task(st, t, ap);
      }
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    T* ap = direct_a ? nullptr : a_scratch.get<T>(mc * kc_max);  // this thread's own
    for (int64_t jc = 0; jc < N; jc += Bl::NC)
      for (int64_t pc = 0; pc < K; pc += Bl::KC) {
        const Step st = step_at(jc, pc);
#pragma omp for schedule(static)
        for (int64_t q = 0; q < st.n_panels; ++q) pack_panel(st, q);
          // (implicit barrier: the B panel is complete before anyone reads it)
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < m_blocks * n_split; ++t) run_task(st, t, ap);
        // (implicit barrier: everyone is done with the B panel before it is repacked)
      }
  }
}

// ---- the batch -----------------------------------------------------------------------------------------

// Few rows and many columns (a linear layer on a small batch, like the flow's 32-row MLPs): the blocked
// kernel would pack all of op(B) (a transposing copy of the weight) for a handful of micro-kernel rows, and
// the copy costs more than the arithmetic. C^T = op(B)^T op(A)^T is computed instead: the large operand
// becomes A, read in place as the micro-kernel's rows (x W^T: W's rows), and only the small one is
// packed; the tiles are written back transposed (ct) and the bias runs along their rows. Only
// when op(B) is stored transposed: otherwise A' would need the packing of a transposed operand, which is
// slower than packing B's rows as they are (measured on the flow's backward, g @ W).
bool swap_operands(const GemmArgs& g) { return g.trans_b && g.M >= 8 && g.M <= 64 && g.N >= 4 * g.M; }

GemmArgs swapped(const GemmArgs& g) {
  GemmArgs s = g;
  s.M = g.N, s.N = g.M;
  s.A = g.B, s.lda = g.ldb, s.stride_a = g.stride_b, s.trans_a = !g.trans_b;  // op(A') = op(B)^T
  s.B = g.A, s.ldb = g.lda, s.stride_b = g.stride_a, s.trans_b = !g.trans_a;  // op(B') = op(A)^T
  return s;
}

template <typename Tile, typename T = typename Tile::T>
void gemm_tiled(const GemmArgs& args) {
  constexpr Tile tile{};
  if (args.M <= 0 || args.N <= 0 || args.batch <= 0) return;
  const bool ct = args.K > 0 && swap_operands(args);
  const GemmArgs g = ct ? swapped(args) : args;
  const T* A = static_cast<const T*>(g.A);
  const T* B = static_cast<const T*>(g.B);
  T* C = static_cast<T*>(g.C);
  if (g.K == 0) {  // empty sum: C = act(beta * C + bias) (C not read when beta == 0)
    const T* bias = static_cast<const T*>(g.bias);
    for (int64_t b = 0; b < g.batch; ++b)
      for (int64_t i = 0; i < g.M; ++i) {
        T* ci = C + b * g.stride_c + i * g.ldc;
        for (int64_t j = 0; j < g.N; ++j) {
          T v = g.beta == 0 ? T(0) : T(g.beta) * ci[j];
          if (bias != nullptr) v += bias[j];
          ci[j] = v;
        }
        if (g.gelu) gelu_strip(tile, ci, g.ldc, 1, g.N);
      }
    return;
  }
  const double work = double(g.M) * double(g.N) * double(g.K);
  const int max_threads = omp_get_max_threads();
  // Independent matrices, at least one per thread: one thread per matrix, each running the blocked kernel.
  if (g.batch > 1 && g.stride_c != 0 && max_threads > 1 && g.batch >= max_threads) {
#pragma omp parallel for schedule(dynamic) if (work * double(g.batch) >= kParallelWork)
    for (int64_t b = 0; b < g.batch; ++b)
      gemm_blocked<Tile>(g, A + b * g.stride_a, B + b * g.stride_b, C + b * g.stride_c, 1, ct);
    return;
  }
  // Otherwise the matrices in order (as the reference: a stride_c of 0 accumulates), threads inside each.
  const int threads = work >= kParallelWork ? max_threads : 1;
  for (int64_t b = 0; b < g.batch; ++b)
    gemm_blocked<Tile>(g, A + b * g.stride_a, B + b * g.stride_b, C + b * g.stride_c, threads, ct);
}

std::atomic<GemmTile> tile_setting{GemmTile::Auto};

bool wide_f32_tile() {
  switch (tile_setting.load(std::memory_order_relaxed)) {
    case GemmTile::Narrow: return false;
    case GemmTile::Wide: return true;
    case GemmTile::Auto: break;
  }
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return avx512;
}

template <typename T>
void gemm_typed(const GemmArgs& g) {
  if constexpr (std::is_same_v<T, float>) {
    if (wide_f32_tile())
      gemm_tiled<TileF32Wide>(g);
    else
      gemm_tiled<TileF32>(g);
  } else {
    gemm_tiled<TileF64>(g);
  }
}

}  // namespace

void gemm(DType dt, const GemmArgs& g) {
  SANF_DISPATCH_FLOAT(dt, "matmul", [&] { gemm_typed<scalar_t>(g); });
}

void set_gemm_tile(GemmTile tile) { tile_setting.store(tile, std::memory_order_relaxed); }

const char* gemm_tile_name() { return wide_f32_tile() ? "12x32" : "6x16"; }

void gemm_reference(DType dt, const GemmArgs& g) {
  SANF_DISPATCH_FLOAT(dt, "matmul", [&] { gemm_reference_typed<scalar_t>(g); });
}

}  // namespace sanf::kernels::cpu
