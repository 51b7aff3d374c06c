// kernels/dispatch.h: the one device switch each kernel header performs, and what a CPU-only build does
// when asked for CUDA.
//
// Every kernel family is declared twice with identical raw-pointer signatures, in namespace
// kernels::cpu (kernels/cpu/*.cpp) and kernels::cuda (kernels/cuda/*.cu). The Tensor-level function in
// kernels/<family>.h picks one with SANF_DEVICE_SWITCH. All pointers point at element 0 of the operand
// (offset already applied); sizes and strides count elements. Kernels trust their arguments: the
// differentiable op that calls them (autograd/ops/*.cpp) validates shapes, dtypes and devices first.
//
// Every dispatch is counted (kernel_calls()): on CUDA each is at least one kernel launch or library call, so
// the count per training step says how much of a step's time can be launch overhead (`sanf bench flow`).
#pragma once

#include <atomic>
#include <cstdint>

#include "core/error.h"
#include "core/tensor.h"

namespace sanf::kernels {
[[noreturn]] inline void no_cuda(const char* what) {
  SANF_FAIL("[", what, "] this build of sanf has no CUDA support (configure with -DSANF_CUDA=ON)");
}

namespace dispatch_detail {
inline std::atomic<uint64_t> g_calls{0};
}  // namespace dispatch_detail
// The kernel calls dispatched so far in this process, on either device, from any thread.
inline uint64_t kernel_calls() { return dispatch_detail::g_calls.load(std::memory_order_relaxed); }
inline void count_kernel_call() { dispatch_detail::g_calls.fetch_add(1, std::memory_order_relaxed); }
}  // namespace sanf::kernels

#ifdef SANF_CUDA
#define SANF_DEVICE_SWITCH(device, what, cpu_call, cuda_call) \
  do {                                                        \
    ::sanf::kernels::count_kernel_call();                     \
    if ((device) == ::sanf::Device::CPU) {                    \
      cpu_call;                                               \
    } else {                                                  \
      cuda_call;                                              \
    }                                                         \
  } while (0)
#else
#define SANF_DEVICE_SWITCH(device, what, cpu_call, cuda_call) \
  do {                                                        \
    ::sanf::kernels::count_kernel_call();                     \
    if ((device) == ::sanf::Device::CPU) {                    \
      cpu_call;                                               \
    } else {                                                  \
      ::sanf::kernels::no_cuda(what);                         \
    }                                                         \
  } while (0)
#endif
