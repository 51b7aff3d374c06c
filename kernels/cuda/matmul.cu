// kernels/cuda/matmul.cu: batched strided GEMM on the GPU through cuBLAS, and the TF32 switch.
//
// The contract (kernels/matmul.h) is row-major: C_b = alpha * op(A_b) @ op(B_b) + beta * C_b. cuBLAS is
// column-major. A row-major matrix with row stride ld, read as column-major with leading dimension ld, is
// its transpose. So the row-major product C = op(A) op(B) is, in cuBLAS's eyes, the column-major product
//     C^T = op(B)^T op(A)^T        (an N x M matrix, leading dimension ldc)
// i.e. cuBLAS's first operand is our B and its second is our A, with m = N, n = M, k = K and the same
// transpose flags: B stored K x N row-major is op(B)^T (N x K) as it stands, so no transpose (unless
// trans_b); likewise A. One cublas{S,D}gemmStridedBatched call covers every batch (stride 0 broadcasts an
// operand). The epilogue (bias, GELU; kernels/matmul.h) is one elementwise kernel over C after cuBLAS.
//
// Cases cuBLAS cannot take go through a plain kernel with the reference's arithmetic (each C element one
// thread, summed in double): a row stride smaller than the row (rows that overlap, e.g. an expanded
// operand with stride 0) or a size past 32-bit int. A batch stride of 0 for C (every batch accumulates into
// one matrix) runs the batches one after another, as the CPU does; K == 0 scales C by beta.
//
// One cuBLAS handle for the process, created on first use, on the legacy default stream, never destroyed
// (it would outlive the CUDA context at exit). f32 runs in full FP32 unless set_tf32(true).
//
// gemm_bf16 (kernels/fast/matmul_bf16.h) shares the handle and the epilogue: one cublasGemmStridedBatchedEx with
// bf16 operands (CUDA_R_16BF), f32 accumulation (CUBLAS_COMPUTE_32F) and an f32 C, which cuBLAS runs on
// the tensor cores. What cuBLAS is not given (the cases above, and K == 0) widens the operands to f32 and
// takes the f32 path: the same numbers, since bf16 values and their products are exact in f32.
// With set_cublaslt(true), a one-matrix bf16 GEMM with an f32 result and something to fuse (a bias, an
// added matrix; no GELU), and a one-matrix f32 GEMM with a bias (linear's forward, in FP32 or TF32), go to
// cuBLASLt instead (gemm_lt): the bias as its CUBLASLT_EPILOGUE_BIAS, the added matrix as its C input
// (beta = 1, D written elsewhere), so the result is written once. Its heuristic's choice is kept per shape,
// alignment and epilogue; a shape it has no algorithm for, or a call it refuses, takes the cuBLAS path above
// (and is not offered to it again).
#include <cublasLt.h>

#include <atomic>
#include <climits>
#include <map>
#include <mutex>
#include <tuple>
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda_options.h"
#include "kernels/matmul.h"
#include "kernels/fast/matmul_bf16.h"

namespace sanf::kernels {

namespace {
std::mutex g_handle_mu;
cublasHandle_t g_handle = nullptr;
std::atomic<bool> g_tf32{false};
std::atomic<long long> g_cublaslt_count{0};
std::atomic<bool> g_cublaslt{env_flag("SANF_CUBLASLT")};

cublasMath_t math_mode() { return g_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH; }

cublasHandle_t cublas_handle() {
  std::lock_guard<std::mutex> lock(g_handle_mu);
  if (g_handle == nullptr) {
    cublasHandle_t h = nullptr;
    CUBLAS_CHECK(cublasCreate(&h));
    CUBLAS_CHECK(cublasSetStream(h, 0));  // the legacy default stream, as every other kernel
    CUBLAS_CHECK(cublasSetMathMode(h, math_mode()));
    g_handle = h;
  }
  return g_handle;
}
}  // namespace

void set_tf32(bool on) {
  std::lock_guard<std::mutex> lock(g_handle_mu);
  g_tf32 = on;
  if (g_handle != nullptr) CUBLAS_CHECK(cublasSetMathMode(g_handle, math_mode()));
}

bool tf32_enabled() { return g_tf32; }

void set_cublaslt(bool on) { g_cublaslt = on; }
bool cublaslt_enabled() { return g_cublaslt; }
long long cublaslt_gemm_count() { return g_cublaslt_count; }

namespace cuda {

using namespace cuda_detail;

namespace {

// ---- plain kernels for what cuBLAS is not given -----------------------------------------------------------

// One thread per element (i, j) of one M x N matrix C, for one batch (A, B, C already offset to it).
template <typename T>
__global__ void gemm_plain_kernel(GemmArgs g, const T* A, const T* B, T* C) {
  const int64_t n = g.M * g.N;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    gemm_element(g, A, B, C, e / g.N, e % g.N);
  }
}

// K == 0: the empty sum, so C = beta * C (and 0 when beta == 0, without reading C). All batches at once when
// they are distinct matrices; a stride_c of 0 is handled by the caller.
template <typename T>
__global__ void scale_c_kernel(T* C, int64_t M, int64_t N, int64_t ldc, int64_t stride_c, int64_t batch, double beta) {
  const int64_t n = batch * M * N;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = e / (M * N), i = (e / N) % M, j = e % N;
    T& c = C[b * stride_c + i * ldc + j];
    c = beta == 0 ? T(0) : T(beta * double(c));
  }
}

// The epilogue after cuBLAS (or after the K == 0 scaling): act(C + bias) over `batch` matrices, stored
// back into C, or (gemm_bf16's `out`) into `out` as bf16 (O = bf16; C is then only read), through
// store_from_double as the copy kernel converts. One block per row (b, i) of the matrices (grid-stride over
// the batch * M rows), its threads over the row's N columns: the matrix and row come from one division per
// row, not three 64-bit divisions per element (which held it to about a third of the memory bandwidth on
// an H200).
// `add` (gemm_bf16's added matrix, C's layout, one matrix) is added last, after the GELU.
template <typename T, typename O>
__global__ void epilogue_kernel(const T* C, O* out, int64_t M, int64_t N, int64_t ldc, int64_t stride_c, int64_t batch,
                                const T* bias, bool gelu, const T* add) {
  for (int64_t row = blockIdx.x; row < batch * M; row += gridDim.x) {
    const int64_t base = (row / M) * stride_c + (row % M) * ldc;
    for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
      T v = C[base + j];
      if (bias != nullptr) v += bias[j];
      if (gelu) v = unary_value(UnaryOp::Gelu, v, T(0));
      if (add != nullptr) v += add[base + j];
      store_from_double(out, base + j, double(v));
    }
  }
}

template <typename T>
void epilogue(const GemmArgs& g, T* C, int64_t batches, bf16* out = nullptr, const T* add = nullptr) {
  const T* bias = static_cast<const T*>(g.bias);
  if (out != nullptr) {
    epilogue_kernel<<<row_blocks(batches * g.M), row_threads(g.N)>>>(static_cast<const T*>(C), out, g.M, g.N, g.ldc,
                                                                     g.stride_c, batches, bias, g.gelu, add);
  } else {
    if (g.bias == nullptr && !g.gelu && add == nullptr) return;
    epilogue_kernel<<<row_blocks(batches * g.M), row_threads(g.N)>>>(static_cast<const T*>(C), C, g.M, g.N, g.ldc,
                                                                     g.stride_c, batches, bias, g.gelu, add);
  }
  SANF_CUDA_LAUNCH_CHECK();
}

// ---- cuBLASLt -------------------------------------------------------------------------------------------

// cuBLASLt: one handle and one 32 MiB workspace for the process (created on first use, never destroyed, as
// the cuBLAS handle; the workspace from the caching allocator, whose blocks are 256-byte aligned as cuBLASLt
// asks), and the heuristic's algorithm per problem (key below); ok = false marks a problem cuBLASLt has no
// algorithm for, or refused. If the handle or the workspace cannot be had, cuBLASLt is left alone for the
// rest of the process (g_lt_unusable) and every GEMM takes the cuBLAS path.
std::mutex g_lt_mu;
cublasLtHandle_t g_lt = nullptr;
void* g_lt_workspace = nullptr;
bool g_lt_unusable = false;
constexpr size_t kLtWorkspace = size_t(32) << 20;

struct LtPlan {
  bool ok = false;
  cublasLtMatmulAlgo_t algo{};
};
using LtKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool, bool, int, int, int,
                         int, int, int>;
std::map<LtKey, LtPlan> g_lt_plans;

// The largest power of two up to 256 that divides the address: what cuBLASLt's algorithms ask of operands.
int alignment(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  int al = 1;
  while (al < 256 && a % uintptr_t(2 * al) == 0) al *= 2;
  return al;
}

// Descriptors, destroyed on every way out.
struct LtDescs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtDescs() {
    if (pref != nullptr) cublasLtMatmulPreferenceDestroy(pref);
    if (c != nullptr) cublasLtMatrixLayoutDestroy(c);
    if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
    if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
    if (op != nullptr) cublasLtMatmulDescDestroy(op);
  }
};

// A status that says cuBLASLt does not take this problem (nothing ran): the cuBLAS path can do it instead.
bool lt_refused(cublasStatus_t st) {
  return st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_INVALID_VALUE || st == CUBLAS_STATUS_ARCH_MISMATCH;
}

template <typename V>
cublasStatus_t set_attr(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const V& v) {
  return cublasLtMatmulDescSetAttribute(d, attr, &v, sizeof(v));
}
template <typename V>
cublasStatus_t set_pref(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr, const V& v) {
  return cublasLtMatmulPreferenceSetAttribute(p, attr, &v, sizeof(v));
}

// C = alpha A B + bias (+ add), one matrix with an f32 C, through cuBLASLt, in the same column-major reading as
// the cuBLAS path (cuBLASLt's A is our B, its B our A; m = N, n = M). A and B are of type ab (bf16 or f32),
// multiplied with `compute` (CUBLAS_COMPUTE_32F, or _FAST_TF32 under set_tf32). g's leading dimensions are
// already usable. False, with nothing written, when it is not for cuBLASLt: switched off, not one matrix with
// beta 0, a GELU, nothing to fuse, a bias not 16-byte aligned (the heuristic's alignment preferences cover A,
// B, C and D but not the bias, and an algorithm that assumes an aligned bias faults on a misaligned one,
// which would lose the CUDA context: such a bias, a view at an odd offset, takes the cuBLAS path), or a
// problem cuBLASLt does not take. A failure that is not a refusal (an execution error) throws.
bool gemm_lt(const GemmArgs& g, cudaDataType_t ab, cublasComputeType_t compute, const float* add) {
  if (!cublaslt_enabled() || g.batch != 1 || g.beta != 0 || g.gelu || (g.bias == nullptr && add == nullptr))
    return false;
  if (g.bias != nullptr && alignment(g.bias) < 16) return false;
  const cublasOperation_t op_a = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLASLt's A is our B
  const cublasOperation_t op_b = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLASLt's B is our A
  const float* C_in = add != nullptr ? add : static_cast<const float*>(g.C);
  // The operands' alignments, in cuBLASLt's order (A, B, C, D): the heuristic's preferences (a bias is
  // 16-byte aligned by now, and the heuristic does not look at its alignment).
  const int align[4] = {alignment(g.B), alignment(g.A), alignment(C_in), alignment(g.C)};
  const LtKey key{g.M, g.N, g.K, g.lda, g.ldb, g.ldc, g.trans_a, g.trans_b, g.bias != nullptr, add != nullptr,
                  align[0], align[1], align[2], align[3], int(ab), int(compute)};
  std::lock_guard<std::mutex> lock(g_lt_mu);
  if (g_lt_unusable) return false;
  const auto known = g_lt_plans.find(key);
  if (known != g_lt_plans.end() && !known->second.ok) return false;
  if (g_lt == nullptr) {
    try {
      g_lt_workspace = cuda_alloc(int64_t(kLtWorkspace));  // frees cached blocks and retries when memory is short
    } catch (const Error&) {
      (void)cudaGetLastError();  // the failed allocation's error is not the next launch's
      g_lt_unusable = true;
      return false;
    }
    cublasLtHandle_t h = nullptr;
    if (cublasLtCreate(&h) != CUBLAS_STATUS_SUCCESS) {
      (void)cudaGetLastError();
      cuda_free(g_lt_workspace);
      g_lt_workspace = nullptr;
      g_lt_unusable = true;
      return false;
    }
    g_lt = h;
  }

  LtDescs d;
  const uint64_t m = uint64_t(g.N), n = uint64_t(g.M), k = uint64_t(g.K);
  bool ok = cublasLtMatmulDescCreate(&d.op, compute, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
            set_attr(d.op, CUBLASLT_MATMUL_DESC_TRANSA, int32_t(op_a)) == CUBLAS_STATUS_SUCCESS &&
            set_attr(d.op, CUBLASLT_MATMUL_DESC_TRANSB, int32_t(op_b)) == CUBLAS_STATUS_SUCCESS;
  if (ok && g.bias != nullptr) {
    ok = set_attr(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, uint32_t(CUBLASLT_EPILOGUE_BIAS)) == CUBLAS_STATUS_SUCCESS &&
         set_attr(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, g.bias) == CUBLAS_STATUS_SUCCESS &&
         set_attr(d.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, int32_t(CUDA_R_32F)) == CUBLAS_STATUS_SUCCESS;
  }
  // Stored (column-major) shapes: op_a(A) is m x k, op_b(B) is k x n; C and D m x n with leading dim ldc.
  ok = ok &&
       cublasLtMatrixLayoutCreate(&d.a, ab, op_a == CUBLAS_OP_N ? m : k, op_a == CUBLAS_OP_N ? k : m, g.ldb) ==
           CUBLAS_STATUS_SUCCESS &&
       cublasLtMatrixLayoutCreate(&d.b, ab, op_b == CUBLAS_OP_N ? k : n, op_b == CUBLAS_OP_N ? n : k, g.lda) ==
           CUBLAS_STATUS_SUCCESS &&
       cublasLtMatrixLayoutCreate(&d.c, CUDA_R_32F, m, n, g.ldc) == CUBLAS_STATUS_SUCCESS;
  LtPlan plan;
  if (known != g_lt_plans.end()) {
    plan = known->second;
  } else if (ok) {
    ok = cublasLtMatmulPreferenceCreate(&d.pref) == CUBLAS_STATUS_SUCCESS &&
         set_pref(d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t(kLtWorkspace)) == CUBLAS_STATUS_SUCCESS;
    const cublasLtMatmulPreferenceAttributes_t align_attr[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4 && ok; ++i) ok = set_pref(d.pref, align_attr[i], uint32_t(align[i])) == CUBLAS_STATUS_SUCCESS;
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t hs =
        ok ? cublasLtMatmulAlgoGetHeuristic(g_lt, d.op, d.a, d.b, d.c, d.c, d.pref, 1, &result, &found)
           : CUBLAS_STATUS_NOT_SUPPORTED;
    ok = hs == CUBLAS_STATUS_SUCCESS && found > 0 && result.state == CUBLAS_STATUS_SUCCESS;
    plan.ok = ok;
    if (ok) plan.algo = result.algo;
    // Remembered: an algorithm, or that there is none for this problem. A passing failure (memory for the
    // heuristic itself) is not: the next call asks again.
    if (ok || hs == CUBLAS_STATUS_SUCCESS || lt_refused(hs)) g_lt_plans[key] = plan;
  }
  if (!ok || !plan.ok) return false;
  const float alpha = float(g.alpha), beta = add != nullptr ? 1.f : 0.f;
  const cublasStatus_t st = cublasLtMatmul(g_lt, d.op, &alpha, g.B, d.a, g.A, d.b, &beta, C_in, d.c, g.C, d.c,
                                           &plan.algo, g_lt_workspace, kLtWorkspace, 0);
  if (lt_refused(st)) {
    // Refused before it ran (an argument it does not take): remembered, and the cuBLAS path runs instead.
    (void)cudaGetLastError();
    g_lt_plans[key].ok = false;
    return false;
  }
  CUBLAS_CHECK(st);  // anything else (an execution error) is not something the fallback can repair
  ++g_cublaslt_count;
  return true;
}

// ---- cuBLAS ---------------------------------------------------------------------------------------------

cublasStatus_t gemm_strided_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                    const float* alpha, const float* A, int lda, long long sa, const float* B, int ldb,
                                    long long sb, const float* beta, float* C, int ldc, long long sc, int batch) {
  return cublasSgemmStridedBatched(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}
cublasStatus_t gemm_strided_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                    const double* alpha, const double* A, int lda, long long sa, const double* B,
                                    int ldb, long long sb, const double* beta, double* C, int ldc, long long sc,
                                    int batch) {
  return cublasDgemmStridedBatched(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}

bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

// A row-major operand with `rows` stored rows of `cols` values: its row stride only matters with 2+ rows,
// and cuBLAS wants a leading dimension of at least the row length, so a single row gets exactly that.
int64_t usable_ld(int64_t ld, int64_t rows, int64_t cols) { return rows <= 1 ? std::max<int64_t>(ld, cols) : ld; }

template <typename T>
void gemm_typed(GemmArgs g) {
  if (g.M <= 0 || g.N <= 0 || g.batch <= 0) return;
  T* C = static_cast<T*>(g.C);
  const bool accumulate_c = g.stride_c == 0 && g.batch > 1;  // every batch writes the same C: in order

  if (g.K <= 0) {
    const int64_t batches = accumulate_c ? 1 : g.batch;  // beta^batch for a shared C, as batch-by-batch
    for (int64_t rep = 0; rep < (accumulate_c ? g.batch : 1); ++rep) {
      scale_c_kernel<<<grid_for(batches * g.M * g.N), kThreads>>>(C, g.M, g.N, g.ldc, g.stride_c, batches, g.beta);
      SANF_CUDA_LAUNCH_CHECK();
      epilogue(g, C, batches);
    }
    return;
  }

  // Stored shapes (row-major): A is M x K, or K x M with trans_a; B is K x N, or N x K with trans_b.
  const int64_t a_rows = g.trans_a ? g.K : g.M, a_cols = g.trans_a ? g.M : g.K;
  const int64_t b_rows = g.trans_b ? g.N : g.K, b_cols = g.trans_b ? g.K : g.N;
  g.lda = usable_ld(g.lda, a_rows, a_cols);
  g.ldb = usable_ld(g.ldb, b_rows, b_cols);
  g.ldc = usable_ld(g.ldc, g.M, g.N);
  const bool cublas_ok = g.lda >= a_cols && g.ldb >= b_cols && g.ldc >= g.N && fits_int(g.M) && fits_int(g.N) &&
                         fits_int(g.K) && fits_int(g.lda) && fits_int(g.ldb) && fits_int(g.ldc);

  const T* A = static_cast<const T*>(g.A);
  const T* B = static_cast<const T*>(g.B);
  if (!cublas_ok) {
    for (int64_t b = 0; b < g.batch; ++b) {
      gemm_plain_kernel<<<grid_for(g.M * g.N), kThreads>>>(g, A + b * g.stride_a, B + b * g.stride_b,
                                                           C + b * g.stride_c);
      SANF_CUDA_LAUNCH_CHECK();
    }
    return;
  }

  // cuBLASLt, when switched on, for one f32 matrix with a bias to fuse (linear's forward).
  if constexpr (std::is_same_v<T, float>) {
    if (gemm_lt(g, CUDA_R_32F, g_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, nullptr)) return;
  }
  cublasHandle_t h = cublas_handle();
  const T alpha = T(g.alpha), beta = T(g.beta);
  const cublasOperation_t op_first = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;   // cuBLAS's A is our B
  const cublasOperation_t op_second = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS's B is our A
  // Batches per call: all of them (in chunks that fit an int), or one at a time when they share C.
  const int64_t per_call = accumulate_c ? 1 : std::min<int64_t>(g.batch, INT_MAX);
  for (int64_t b0 = 0; b0 < g.batch; b0 += per_call) {
    const int64_t nb = std::min(per_call, g.batch - b0);
    CUBLAS_CHECK(gemm_strided_batched(h, op_first, op_second, int(g.N), int(g.M), int(g.K), &alpha, B + b0 * g.stride_b,
                                      int(g.ldb), g.stride_b, A + b0 * g.stride_a, int(g.lda), g.stride_a, &beta,
                                      C + b0 * g.stride_c, int(g.ldc), g.stride_c, int(nb)));
    epilogue(g, C + b0 * g.stride_c, nb);
  }
}

}  // namespace

void gemm(DType dt, const GemmArgs& g) {
  SANF_DISPATCH_FLOAT(dt, "matmul", [&] { gemm_typed<scalar_t>(g); });
}

// ---- bf16 operands, f32 accumulation and result ------------------------------------------------------------

void gemm_bf16(const GemmArgs& g0, bf16* out, const float* add) {
  GemmArgs g = g0;
  if (g.M <= 0 || g.N <= 0 || g.batch <= 0) return;
  const int64_t a_rows = g.trans_a ? g.K : g.M, a_cols = g.trans_a ? g.M : g.K;
  const int64_t b_rows = g.trans_b ? g.N : g.K, b_cols = g.trans_b ? g.K : g.N;
  g.lda = usable_ld(g.lda, a_rows, a_cols);
  g.ldb = usable_ld(g.ldb, b_rows, b_cols);
  g.ldc = usable_ld(g.ldc, g.M, g.N);
  const bool cublas_ok = g.K > 0 && g.lda >= a_cols && g.ldb >= b_cols && g.ldc >= g.N && fits_int(g.M) &&
                         fits_int(g.N) && fits_int(g.K) && fits_int(g.lda) && fits_int(g.ldb) && fits_int(g.ldc);
  if (!cublas_ok) {  // the definition: widened operands through the f32 path
    const Tensor a = widen_bf16(Device::CUDA, g.A, operand_span(a_rows, a_cols, g.lda, g.stride_a, g.batch));
    const Tensor b = widen_bf16(Device::CUDA, g.B, operand_span(b_rows, b_cols, g.ldb, g.stride_b, g.batch));
    g.A = a.data_ptr(), g.B = b.data_ptr();
    gemm_typed<float>(g);  // with its epilogue; then the added matrix and the rounding into out
    if (out != nullptr || add != nullptr) {
      GemmArgs plain = g;
      plain.bias = nullptr, plain.gelu = false;
      epilogue(plain, static_cast<float*>(g.C), g.stride_c == 0 ? 1 : g.batch, out, add);
    }
    return;
  }
  // cuBLASLt, when switched on, for one matrix with an f32 result and a bias or an added matrix to fuse.
  if (out == nullptr && gemm_lt(g, CUDA_R_16BF, CUBLAS_COMPUTE_32F, add)) return;

  cublasHandle_t h = cublas_handle();
  const bf16* A = static_cast<const bf16*>(g.A);
  const bf16* B = static_cast<const bf16*>(g.B);
  float* C = static_cast<float*>(g.C);
  const float alpha = float(g.alpha), beta = float(g.beta);
  const cublasOperation_t op_first = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;   // cuBLAS's A is our B
  const cublasOperation_t op_second = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS's B is our A
  const bool accumulate_c = g.stride_c == 0 && g.batch > 1;  // every batch writes the same C: in order
  const int64_t per_call = accumulate_c ? 1 : std::min<int64_t>(g.batch, INT_MAX);
  // The epilogue writes out directly, unless the batches accumulate into one C (then C must be completed
  // batch by batch, as the reference does, before it is rounded).
  const bool direct_out = out != nullptr && !accumulate_c;
  for (int64_t b0 = 0; b0 < g.batch; b0 += per_call) {
    const int64_t nb = std::min(per_call, g.batch - b0);
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, op_first, op_second, int(g.N), int(g.M), int(g.K), &alpha,
                                            B + b0 * g.stride_b, CUDA_R_16BF, int(g.ldb), g.stride_b,
                                            A + b0 * g.stride_a, CUDA_R_16BF, int(g.lda), g.stride_a, &beta,
                                            C + b0 * g.stride_c, CUDA_R_32F, int(g.ldc), g.stride_c, int(nb),
                                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    epilogue(g, C + b0 * g.stride_c, nb, direct_out ? out + b0 * g.stride_c : nullptr, add);
  }
  if (out != nullptr && !direct_out) {  // a shared C: complete after the last batch, then rounded
    GemmArgs plain = g;
    plain.bias = nullptr, plain.gelu = false;
    epilogue(plain, C, 1, out);
  }
}

}  // namespace cuda
}  // namespace sanf::kernels
