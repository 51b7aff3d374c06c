// core/cuda_utils.h: error checking for CUDA runtime, cuBLAS and cuRAND calls, and the launch check every
// kernel launch is followed by. For .cu files (core/cuda/, kernels/cuda/) only: it includes the CUDA headers.
//
//   CUDA_CHECK(cudaMemcpy(...));            throws sanf::Error("CUDA error: cudaMemcpy(...): <reason> (file:line)")
//   CUBLAS_CHECK(cublasSgemm(...));         the same for cuBLAS status codes
//   CURAND_CHECK(curandGenerateNormal(...)); the same for cuRAND status codes
//   kernel<<<grid, block>>>(...);
//   SANF_CUDA_LAUNCH_CHECK();               a bad launch configuration (or an earlier sticky error) throws here
//
// Kernels run asynchronously: a fault inside a kernel surfaces at the next synchronising call (a cudaMemcpy
// to the host, cuda_synchronize()), whose CUDA_CHECK then reports it. Configure with
// -DCMAKE_CUDA_FLAGS=-DSANF_CUDA_SYNC_LAUNCHES to synchronise after every launch, so that such a fault is
// reported at the launch that caused it (slow; for debugging).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <curand.h>

#include "core/error.h"

namespace sanf::cuda_detail {
inline const char* cublas_status_text(cublasStatus_t s) { return cublasGetStatusString(s); }
inline const char* cublas_status_name(cublasStatus_t s) { return cublasGetStatusName(s); }
// cuRAND has no status-to-text function of its own: the enum's names and curand.h's one-line descriptions.
inline const char* curand_status_text(curandStatus_t s) {
  switch (s) {
    case CURAND_STATUS_SUCCESS: return "CURAND_STATUS_SUCCESS: no errors";
    case CURAND_STATUS_VERSION_MISMATCH: return "CURAND_STATUS_VERSION_MISMATCH: header and library versions differ";
    case CURAND_STATUS_NOT_INITIALIZED: return "CURAND_STATUS_NOT_INITIALIZED: generator not initialised";
    case CURAND_STATUS_ALLOCATION_FAILED: return "CURAND_STATUS_ALLOCATION_FAILED: memory allocation failed";
    case CURAND_STATUS_TYPE_ERROR: return "CURAND_STATUS_TYPE_ERROR: generator is the wrong type";
    case CURAND_STATUS_OUT_OF_RANGE: return "CURAND_STATUS_OUT_OF_RANGE: argument out of range";
    case CURAND_STATUS_LENGTH_NOT_MULTIPLE:
      return "CURAND_STATUS_LENGTH_NOT_MULTIPLE: length not a multiple of the dimension (normals need an even count)";
    case CURAND_STATUS_DOUBLE_PRECISION_REQUIRED:
      return "CURAND_STATUS_DOUBLE_PRECISION_REQUIRED: the GPU lacks the double precision asked for";
    case CURAND_STATUS_LAUNCH_FAILURE: return "CURAND_STATUS_LAUNCH_FAILURE: kernel launch failure";
    case CURAND_STATUS_PREEXISTING_FAILURE:
      return "CURAND_STATUS_PREEXISTING_FAILURE: an earlier CUDA error was pending on entry";
    case CURAND_STATUS_INITIALIZATION_FAILED: return "CURAND_STATUS_INITIALIZATION_FAILED: CUDA initialisation failed";
    case CURAND_STATUS_ARCH_MISMATCH: return "CURAND_STATUS_ARCH_MISMATCH: the GPU does not support the feature";
    case CURAND_STATUS_INTERNAL_ERROR: return "CURAND_STATUS_INTERNAL_ERROR: internal cuRAND error";
  }
  return "unknown cuRAND status";
}
}  // namespace sanf::cuda_detail

// CUDA_CHECK(call): run a CUDA runtime call; throw with the call's text and CUDA's reason unless it succeeded.
#define CUDA_CHECK(call)                                                                               \
  do {                                                                                                 \
    const cudaError_t sanf_cuda_err_ = (call);                                                         \
    if (sanf_cuda_err_ != cudaSuccess)                                                                 \
      SANF_FAIL("CUDA error: ", #call, ": ", cudaGetErrorName(sanf_cuda_err_), ": ",                   \
                cudaGetErrorString(sanf_cuda_err_),                                                    \
                " (a fault inside an earlier asynchronous kernel is reported by the next CUDA call)"); \
  } while (0)

// CUBLAS_CHECK(call): the same for cuBLAS.
#define CUBLAS_CHECK(call)                                                                                     \
  do {                                                                                                         \
    const cublasStatus_t sanf_cublas_st_ = (call);                                                             \
    if (sanf_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                                              \
      SANF_FAIL("cuBLAS error: ", #call, ": ", ::sanf::cuda_detail::cublas_status_name(sanf_cublas_st_), ": ", \
                ::sanf::cuda_detail::cublas_status_text(sanf_cublas_st_));                                     \
  } while (0)

// CURAND_CHECK(call): the same for cuRAND (host API).
#define CURAND_CHECK(call)                                                                              \
  do {                                                                                                  \
    const curandStatus_t sanf_curand_st_ = (call);                                                      \
    if (sanf_curand_st_ != CURAND_STATUS_SUCCESS)                                                       \
      SANF_FAIL("cuRAND error: ", #call, ": ", ::sanf::cuda_detail::curand_status_text(sanf_curand_st_)); \
  } while (0)

// SANF_CUDA_LAUNCH_CHECK(): after every kernel launch. cudaGetLastError reports (and clears) a launch
// failure such as an invalid grid; it does not wait for the kernel.
#ifdef SANF_CUDA_SYNC_LAUNCHES
#define SANF_CUDA_LAUNCH_CHECK()         \
  do {                                   \
    CUDA_CHECK(cudaGetLastError());      \
    CUDA_CHECK(cudaDeviceSynchronize()); \
  } while (0)
#else
#define SANF_CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())
#endif
