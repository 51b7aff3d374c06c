// core/cuda_utils.h: error checking for CUDA runtime and cuBLAS calls, and the launch check every kernel
// launch is followed by. For .cu files (core/cuda/, kernels/cuda/) only: it includes the CUDA headers.
//
//   CUDA_CHECK(cudaMemcpy(...));            throws sanf::Error("CUDA error: cudaMemcpy(...): <reason> (file:line)")
//   CUBLAS_CHECK(cublasSgemm(...));         the same for cuBLAS status codes
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

#include "core/error.h"

namespace sanf::cuda_detail {
inline const char* cublas_status_text(cublasStatus_t s) { return cublasGetStatusString(s); }
inline const char* cublas_status_name(cublasStatus_t s) { return cublasGetStatusName(s); }
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
