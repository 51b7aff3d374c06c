// kernels/cpu/cuda_options_stub.cpp: the CUDA backend switches of a build without CUDA (see
// kernels/cuda_options.h): the flag is kept, so the setting reads back, and changes nothing. The CUDA
// build's versions are in kernels/cuda/matmul.cu, next to the cuBLAS handle they configure.
#include "kernels/cuda_options.h"

#ifndef SANF_CUDA
#include <atomic>

namespace sanf::kernels {
namespace {
std::atomic<bool> g_tf32{false};
}  // namespace
void set_tf32(bool on) { g_tf32 = on; }
bool tf32_enabled() { return g_tf32; }
}  // namespace sanf::kernels
#endif
