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
// sees unit-stride data and needs no edge cases except when it writes C. The micro-kernel keeps the
// MR x NR tile of C in registers for the whole KC loop: per k it loads one row of the B micro-panel (NR
// values), broadcasts MR values of A, and does MR x NR multiply-adds. With AVX2 and f32 that is 6 x 16 =
// 12 ymm accumulators + 2 B vectors + 1 broadcast (15 of the 16 registers); f64 uses 6 x 8 (same registers).
// It is written as plain loops over a local array; `omp simd` on the NR loop asks GCC to vectorise that
// loop rather than the reduction over k, and GCC then keeps the accumulators in registers (check with
// `objdump -d | grep vfmadd`: the inner loop is 12 vfmadd231ps and nothing else but loads).
//
// ISA: the micro-kernel is compiled three times (target_clones) and the loader picks one by CPUID:
// x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA: Haswell and later, Zen), and the baseline. The clones are
// named by ISA level, not "arch=haswell": GCC selects an arch= clone by CPU model, so a Haswell clone is
// never picked on an AMD Zen, while x86-64-v3 is selected by its feature bits.
//
// Block sizes (elements), for 32 KiB L1d, 512 KiB-1 MiB L2 per core, a shared L3 of several MiB:
//   KC = 256: a B micro-panel is KC x NR = 16 KiB (f32, f64 alike): half of L1, leaving room for A.
//   MC = 144 (f32) / 96 (f64): the A block is MC x KC = 144 KiB / 192 KiB, well inside L2.
//   NC = 3072 (f32) / 1536 (f64): the B panel is KC x NC = 3 MiB, a share of L3.
// With several threads the M blocks are evened out to a multiple of the thread count (a 1576-row problem
// on 2 threads is 12 blocks of 132 rows, not 11 of 144 with one thread idle at the end); when there are
// fewer M blocks than threads (short, wide C) the N range is split as well. Each C element is summed in
// the same order whatever the thread count, so results do not depend on it.
//
// Threads: batches of independent matrices are shared out one matrix per thread; a single large matrix is
// shared out by blocks as above; problems under kParallelWork multiply-adds run on the calling thread.
// A batch stride of 0 for C means every batch writes the same matrix; those batches run in order, so
// C accumulates exactly as in the reference (with beta = 1, C += sum over the batch).
#include <omp.h>

#include <algorithm>
#include <cstdlib>

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

template <typename T>
struct Blocking;
template <>
struct Blocking<float> {
  static constexpr int MR = 6, NR = 16;
  static constexpr int64_t KC = 256, MC = 144, NC = 3072;
};
template <>
struct Blocking<double> {
  static constexpr int MR = 6, NR = 8;
  static constexpr int64_t KC = 256, MC = 96, NC = 1536;
};
static_assert(Blocking<float>::MC % Blocking<float>::MR == 0 && Blocking<double>::MC % Blocking<double>::MR == 0);
static_assert(Blocking<float>::NC % Blocking<float>::NR == 0 && Blocking<double>::NC % Blocking<double>::NR == 0);

// Below this many multiply-adds (M*N*K summed over the batch) one thread is faster than waking the others.
constexpr double kParallelWork = 64.0 * 64.0 * 64.0;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// ---- micro-kernel --------------------------------------------------------------------------------------

// C[0:m, 0:n] = alpha * (a @ b) + beta * C[0:m, 0:n], where a is an MR x kc micro-panel stored k-major
// (a[k*MR + i]) and b a kc x NR micro-panel (b[k*NR + j]). The full MR x NR product is computed (the
// panels are zero-padded); only the valid m x n corner is written. beta == 0: C is not read.
template <typename T, int MR, int NR>
[[gnu::always_inline]] inline void micro_tile(int64_t kc, const T* __restrict a, const T* __restrict b, T* __restrict c,
                                              int64_t ldc, int m, int n, T alpha, T beta) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i) {
      const T ai = a[i];
#pragma omp simd
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
    a += MR;
    b += NR;
  }
  if (m == MR && n == NR) {
    for (int i = 0; i < MR; ++i) {
      T* ci = c + i * ldc;
      if (beta == T(0)) {
#pragma omp simd
        for (int j = 0; j < NR; ++j) ci[j] = alpha * acc[i][j];
      } else {
#pragma omp simd
        for (int j = 0; j < NR; ++j) ci[j] = alpha * acc[i][j] + beta * ci[j];
      }
    }
    return;
  }
  for (int i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    for (int j = 0; j < n; ++j) ci[j] = beta == T(0) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * ci[j];
  }
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void micro_kernel(
    int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n, float alpha, float beta) {
  micro_tile<float, Blocking<float>::MR, Blocking<float>::NR>(kc, a, b, c, ldc, m, n, alpha, beta);
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void micro_kernel(
    int64_t kc, const double* a, const double* b, double* c, int64_t ldc, int m, int n, double alpha, double beta) {
  micro_tile<double, Blocking<double>::MR, Blocking<double>::NR>(kc, a, b, c, ldc, m, n, alpha, beta);
}

// ---- packing -------------------------------------------------------------------------------------------

// op(A)[i0 : i0+mc, p0 : p0+kc] -> ceil(mc/MR) micro-panels, each MR x kc stored k-major
// (ap[k*MR + i]); rows past mc are zero. op(A)[i][k] is A[i*lda + k], or A[k*lda + i] with trans.
template <typename T>
void pack_a(const T* A, int64_t lda, bool trans, int64_t i0, int64_t mc, int64_t p0, int64_t kc, T* ap) {
  constexpr int MR = Blocking<T>::MR;
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
// columns past n are zero. op(B)[k][j] is B[k*ldb + j], or B[j*ldb + k] with trans.
template <typename T>
void pack_b(const T* B, int64_t ldb, bool trans, int64_t p0, int64_t kc, int64_t j0, int n, T* bp) {
  constexpr int NR = Blocking<T>::NR;
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
template <typename T>
void gemm_blocked(const GemmArgs& g, const T* A, const T* B, T* C, int threads) {
  using Bl = Blocking<T>;
  constexpr int MR = Bl::MR, NR = Bl::NR;
  const int64_t M = g.M, N = g.N, K = g.K;
  const T alpha = T(g.alpha), beta = T(g.beta);

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

#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    T* ap = a_scratch.get<T>(mc * kc_max);  // this thread's own
    for (int64_t jc = 0; jc < N; jc += Bl::NC) {
      const int64_t nc = std::min(Bl::NC, N - jc);
      const int64_t n_panels = ceil_div(nc, NR);
      const int64_t chunk = ceil_div(n_panels, n_split) * NR;  // columns per task, whole micro-panels
      for (int64_t pc = 0; pc < K; pc += Bl::KC) {
        const int64_t kc = std::min(Bl::KC, K - pc);
        const T beta_k = pc == 0 ? beta : T(1);  // later K blocks add onto the first
#pragma omp for schedule(static)
        for (int64_t q = 0; q < n_panels; ++q)
          pack_b(B, g.ldb, g.trans_b, pc, kc, jc + q * NR, int(std::min<int64_t>(NR, nc - q * NR)), bp + q * NR * kc);
          // (implicit barrier: the B panel is complete before anyone reads it)
#pragma omp for schedule(static)
        for (int64_t t = 0; t < m_blocks * n_split; ++t) {
          const int64_t i0 = (t / n_split) * mc, m = std::min(mc, M - i0);
          const int64_t j_lo = (t % n_split) * chunk, j_hi = std::min(nc, j_lo + chunk);
          if (j_lo >= j_hi) continue;
          pack_a(A, g.lda, g.trans_a, i0, m, pc, kc, ap);
          for (int64_t jr = j_lo; jr < j_hi; jr += NR)
            for (int64_t ir = 0; ir < m; ir += MR)
              micro_kernel(kc, ap + ir * kc, bp + jr * kc, C + (i0 + ir) * g.ldc + jc + jr, g.ldc,
                           int(std::min<int64_t>(MR, m - ir)), int(std::min<int64_t>(NR, j_hi - jr)), alpha, beta_k);
        }
        // (implicit barrier: everyone is done with the B panel before it is repacked)
      }
    }
  }
}

// ---- the batch -----------------------------------------------------------------------------------------

template <typename T>
void gemm_typed(const GemmArgs& g) {
  if (g.M <= 0 || g.N <= 0 || g.batch <= 0) return;
  const T* A = static_cast<const T*>(g.A);
  const T* B = static_cast<const T*>(g.B);
  T* C = static_cast<T*>(g.C);
  if (g.K == 0) {  // empty sum: C = beta * C (C not read when beta == 0)
    for (int64_t b = 0; b < g.batch; ++b)
      for (int64_t i = 0; i < g.M; ++i) {
        T* ci = C + b * g.stride_c + i * g.ldc;
        for (int64_t j = 0; j < g.N; ++j) ci[j] = g.beta == 0 ? T(0) : T(g.beta) * ci[j];
      }
    return;
  }
  const double work = double(g.M) * double(g.N) * double(g.K);
  const int max_threads = omp_get_max_threads();
  // Independent matrices, at least one per thread: one thread per matrix, each running the blocked kernel.
  if (g.batch > 1 && g.stride_c != 0 && max_threads > 1 && g.batch >= max_threads) {
#pragma omp parallel for schedule(dynamic) if (work * double(g.batch) >= kParallelWork)
    for (int64_t b = 0; b < g.batch; ++b)
      gemm_blocked(g, A + b * g.stride_a, B + b * g.stride_b, C + b * g.stride_c, 1);
    return;
  }
  // Otherwise the matrices in order (as the reference: a stride_c of 0 accumulates), threads inside each.
  const int threads = work >= kParallelWork ? max_threads : 1;
  for (int64_t b = 0; b < g.batch; ++b)
    gemm_blocked(g, A + b * g.stride_a, B + b * g.stride_b, C + b * g.stride_c, threads);
}

}  // namespace

void gemm(DType dt, const GemmArgs& g) {
  SANF_DISPATCH_FLOAT(dt, "matmul", [&] { gemm_typed<scalar_t>(g); });
}

void gemm_reference(DType dt, const GemmArgs& g) {
  SANF_DISPATCH_FLOAT(dt, "matmul", [&] { gemm_reference_typed<scalar_t>(g); });
}

}  // namespace sanf::kernels::cpu
