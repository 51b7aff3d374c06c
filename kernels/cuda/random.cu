// kernels/cuda/random.cu: random fills on the GPU through cuRAND's host API (contract in kernels/random.h).
//
// One Philox4x32-10 generator for the process, created on first use on the legacy default stream (as every
// other kernel and cuBLAS), never destroyed (it would outlive the CUDA context at exit). Every fill sets
// its seed (one value of the caller's sanf Generator) and offset 0, then generates: Philox is counter
// based, so re-seeding costs nothing and the values of a fill depend on its seed and size only, never on
// what ran before. CURAND_ORDERING_PSEUDO_LEGACY pins the element order (cuRAND guarantees that sequence
// across releases and GPUs; the default ordering may change). A mutex keeps seed-then-generate atomic.
//
// cuRAND's limits, and how they are met:
//   - Normals come from Box-Muller in pairs, so the count must be even: an odd count is generated into a
//     scratch block one element longer, then copied.
//   - Only f32 and f64 are generated: any other dtype is generated in f32 into scratch and converted by the
//     copy kernel (round to nearest even for bf16/f16, truncation for integers, as the CPU converts).
//   - Uniforms are in (0, 1], the contract is [0, 1): a small kernel maps exactly 1.0 to 0.0 (both have
//     the same tiny probability, so the distribution is unchanged otherwise).
//   - cuRAND writes vectors of 2 or 4 values: a destination not 16-byte aligned goes through scratch (a fresh
//     tensor is always aligned: the allocator's blocks are 512-byte aligned).
#include <cstdint>
#include <mutex>
#include <type_traits>

#include "kernels/copy.h"
#include "kernels/cuda/common.cuh"
#include "kernels/random.h"

namespace sanf::kernels::cuda {

using namespace cuda_detail;

namespace {

std::mutex g_curand_mu;
curandGenerator_t g_curand = nullptr;

// The process's generator; the caller holds g_curand_mu.
curandGenerator_t curand_generator() {
  if (g_curand == nullptr) {
    curandGenerator_t gen = nullptr;
    CURAND_CHECK(curandCreateGenerator(&gen, CURAND_RNG_PSEUDO_PHILOX4_32_10));
    CURAND_CHECK(curandSetStream(gen, 0));  // the legacy default stream
    CURAND_CHECK(curandSetGeneratorOrdering(gen, CURAND_ORDERING_PSEUDO_LEGACY));
    g_curand = gen;
  }
  return g_curand;
}

// cuRAND's (0, 1] to [0, 1): 1 becomes 0; then values above `cap` (uniform_cap of the destination dtype,
// which the conversion would round up to 1) become cap.
template <typename T>
__global__ void wrap_one_kernel(T* __restrict__ p, int64_t n, T cap) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = p[i] >= T(1) ? T(0) : p[i] > cap ? cap : p[i];
}

enum class Dist { Normal, Uniform };

// Generate n values of T (float or double) at p, p holding room for round_up_even(n) when normal.
template <typename T>
void generate(curandGenerator_t gen, Dist dist, T* p, int64_t n, DType dst_dt) {
  const size_t count = size_t(dist == Dist::Normal ? n + (n & 1) : n);
  if constexpr (std::is_same_v<T, float>) {
    if (dist == Dist::Normal)
      CURAND_CHECK(curandGenerateNormal(gen, p, count, 0.0f, 1.0f));
    else
      CURAND_CHECK(curandGenerateUniform(gen, p, count));
  } else {
    if (dist == Dist::Normal)
      CURAND_CHECK(curandGenerateNormalDouble(gen, p, count, 0.0, 1.0));
    else
      CURAND_CHECK(curandGenerateUniformDouble(gen, p, count));
  }
  if (dist == Dist::Uniform) {
    wrap_one_kernel<<<grid_for(n), kThreads>>>(p, n, T(uniform_cap(dst_dt)));
    SANF_CUDA_LAUNCH_CHECK();
  }
}

void fill_random(Dist dist, DType dt, void* dst, int64_t n, uint64_t seed) {
  if (n <= 0) return;
  const DType gen_dt = dt == DType::F64 ? DType::F64 : DType::F32;  // what cuRAND produces
  const bool aligned = reinterpret_cast<uintptr_t>(dst) % 16 == 0;
  const bool direct = dt == gen_dt && aligned && (dist == Dist::Uniform || n % 2 == 0);
  // Scratch (freed when it goes out of scope: the caching allocator hands it on, and the default stream
  // orders the copy below before any later use of the block).
  const Tensor scratch = direct ? Tensor() : Tensor::empty({n + (n & 1)}, gen_dt, Device::CUDA);
  void* out = direct ? dst : scratch.data_ptr();
  {
    std::lock_guard<std::mutex> lock(g_curand_mu);
    curandGenerator_t gen = curand_generator();
    CURAND_CHECK(curandSetPseudoRandomGeneratorSeed(gen, static_cast<unsigned long long>(seed)));
    CURAND_CHECK(curandSetGeneratorOffset(gen, 0));
    if (gen_dt == DType::F32)
      generate(gen, dist, static_cast<float*>(out), n, dt);
    else
      generate(gen, dist, static_cast<double*>(out), n, dt);
  }
  if (!direct) {
    const Layout l = make_layout({n}, {1});
    cuda::copy(gen_dt, out, l, dt, dst, l);  // convert (or just move) the first n values
  }
}

}  // namespace

void normal(DType dt, void* dst, int64_t n, uint64_t seed) { fill_random(Dist::Normal, dt, dst, n, seed); }

void uniform(DType dt, void* dst, int64_t n, uint64_t seed) { fill_random(Dist::Uniform, dt, dst, n, seed); }

}  // namespace sanf::kernels::cuda
