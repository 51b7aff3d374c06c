// kernels/dispatch.h: the one device switch each kernel header performs, and what a CPU-only build does
// when asked for CUDA.
//
// Every kernel family is declared twice with identical raw-pointer signatures, in namespace
// kernels::cpu (kernels/cpu/*.cpp) and kernels::cuda (kernels/cuda/*.cu). The Tensor-level function in
// kernels/<family>.h picks one with SANF_DEVICE_SWITCH. All pointers point at element 0 of the operand
// (offset already applied); sizes and strides count elements. Kernels trust their arguments: the
// differentiable op that calls them (autograd/ops/*.cpp) validates shapes, dtypes and devices first.
#pragma once

#include "core/error.h"
#include "core/tensor.h"

namespace sanf::kernels {
[[noreturn]] inline void no_cuda(const char* what) {
  SANF_FAIL("[", what, "] this build of sanf has no CUDA support (configure with -DSANF_CUDA=ON)");
}
}  // namespace sanf::kernels

#ifdef SANF_CUDA
#define SANF_DEVICE_SWITCH(device, what, cpu_call, cuda_call) \
  do {                                                        \
    if ((device) == ::sanf::Device::CPU) {                    \
      cpu_call;                                               \
    } else {                                                  \
      cuda_call;                                              \
    }                                                         \
  } while (0)
#else
#define SANF_DEVICE_SWITCH(device, what, cpu_call, cuda_call) \
  do {                                                        \
    if ((device) == ::sanf::Device::CPU) {                    \
      cpu_call;                                               \
    } else {                                                  \
      ::sanf::kernels::no_cuda(what);                         \
    }                                                         \
  } while (0)
#endif
