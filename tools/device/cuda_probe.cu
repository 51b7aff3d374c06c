// tools/device/cuda_probe.cu: is CUDA usable on this machine? cuda_check.sh's preflight builds it with nvcc
// (a few seconds, before the project is configured) and runs it.
//
//   cuda_probe           driver and runtime versions, the device count, device 0's name, compute capability,
//                        multiprocessors, memory and compute mode; then cudaMalloc, a kernel that writes the
//                        buffer, the copy back checked, cudaFree; a cuBLAS handle and one SGEMM; a cuRAND
//                        generator and one draw. Exit 0 when all of that worked.
//   cuda_probe --quick   the versions, the device, the allocation and the kernel only (what compute-sanitizer
//                        is tried on).
// Lines are "key: value"; a failure prints "unusable: <what failed>: <CUDA's error>" and exits 2.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <curand.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

[[noreturn]] void unusable(const char* what, const char* why) {
  std::printf("unusable: %s: %s\n", what, why);
  std::fflush(stdout);
  std::exit(2);
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) unusable(what, cudaGetErrorString(e));
}

__global__ void iota_kernel(int* p, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] = 3 * i + 1;
}

const char* compute_mode_name(int m) {
  switch (m) {
    case cudaComputeModeDefault:
      return "Default";
    case cudaComputeModeProhibited:
      return "Prohibited";
    case cudaComputeModeExclusiveProcess:
      return "Exclusive_Process";
    default:
      return "unknown";
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);  // 0 when no driver is loaded
  cudaRuntimeGetVersion(&runtime);
  std::printf("driver_api_version: %d.%d\nruntime_version: %d.%d\n", driver / 1000, driver % 1000 / 10, runtime / 1000,
              runtime % 1000 / 10);
  if (driver == 0) unusable("cudaDriverGetVersion", "no CUDA driver is loaded");
  if (driver < runtime) std::printf("warning: the driver supports CUDA up to %d, the runtime is %d\n", driver, runtime);

  int count = 0;
  check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  std::printf("device_count: %d\n", count);
  if (count < 1) unusable("cudaGetDeviceCount", "no CUDA device");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  int mode = -1;
  check(cudaDeviceGetAttribute(&mode, cudaDevAttrComputeMode, 0), "cudaDeviceGetAttribute(ComputeMode)");
  std::printf("device_0: %s\ncompute_capability: %d.%d\nmultiprocessors: %d\nmemory_mib: %zu\ncompute_mode: %s\n",
              prop.name, prop.major, prop.minor, prop.multiProcessorCount, prop.totalGlobalMem >> 20,
              compute_mode_name(mode));
  if (mode == cudaComputeModeProhibited) unusable("compute mode", "the device is in Prohibited compute mode");

  const int n = 1 << 20;
  int* d = nullptr;
  check(cudaMalloc(&d, n * sizeof(int)), "cudaMalloc");
  iota_kernel<<<(n + 255) / 256, 256>>>(d, n);
  check(cudaGetLastError(), "kernel launch");
  check(cudaDeviceSynchronize(), "kernel run");
  int* h = static_cast<int*>(std::malloc(n * sizeof(int)));
  check(cudaMemcpy(h, d, n * sizeof(int), cudaMemcpyDeviceToHost), "cudaMemcpy");
  for (int i = 0; i < n; ++i)
    if (h[i] != 3 * i + 1) unusable("kernel result", "wrong values came back");
  std::free(h);
  check(cudaFree(d), "cudaFree");
  std::printf("malloc_kernel_copy: ok\n");
  if (quick) return 0;

  // cuBLAS: a handle and one 2 x 2 SGEMM (loads a cuBLAS kernel).
  cublasHandle_t handle = nullptr;
  cublasStatus_t st = cublasCreate(&handle);
  if (st != CUBLAS_STATUS_SUCCESS) unusable("cublasCreate", cublasGetStatusString(st));
  float hA[4] = {1, 2, 3, 4}, hC[4] = {0, 0, 0, 0};
  float* dA = nullptr;
  float* dC = nullptr;
  check(cudaMalloc(&dA, sizeof hA), "cudaMalloc");
  check(cudaMalloc(&dC, sizeof hC), "cudaMalloc");
  check(cudaMemcpy(dA, hA, sizeof hA, cudaMemcpyHostToDevice), "cudaMemcpy");
  const float one = 1, zero = 0;
  st = cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, dA, 2, dA, 2, &zero, dC, 2);
  if (st != CUBLAS_STATUS_SUCCESS) unusable("cublasSgemm", cublasGetStatusString(st));
  check(cudaMemcpy(hC, dC, sizeof hC, cudaMemcpyDeviceToHost), "cudaMemcpy");
  // Column-major [1 3; 2 4] squared is [7 15; 10 22].
  if (hC[0] != 7 || hC[1] != 10 || hC[2] != 15 || hC[3] != 22) unusable("cublasSgemm", "wrong values came back");
  cublasDestroy(handle);
  int cublas_version = 0;
  cublasGetVersion(nullptr, &cublas_version);
  std::printf("cublas: ok (version %d)\n", cublas_version);

  // cuRAND: a generator and one draw of normals.
  curandGenerator_t gen = nullptr;
  if (curandCreateGenerator(&gen, CURAND_RNG_PSEUDO_PHILOX4_32_10) != CURAND_STATUS_SUCCESS)
    unusable("curandCreateGenerator", "failed");
  if (curandGenerateNormal(gen, dC, 4, 0.0f, 1.0f) != CURAND_STATUS_SUCCESS) unusable("curandGenerateNormal", "failed");
  check(cudaDeviceSynchronize(), "curand draw");
  curandDestroyGenerator(gen);
  int curand_version = 0;
  curandGetVersion(&curand_version);
  std::printf("curand: ok (version %d)\n", curand_version);
  check(cudaFree(dA), "cudaFree");
  check(cudaFree(dC), "cudaFree");
  return 0;
}
