// core/cuda_stub.cpp: the CUDA memory functions of a build without CUDA. Each throws a clear error, so a
// CPU-only build still links and a `--device cuda` request fails with a message instead of a crash.
#include "core/tensor.h"

#ifndef SANF_CUDA
namespace sanf {
namespace {
[[noreturn]] void no_cuda() { SANF_FAIL("this build of sanf has no CUDA support (configure with -DSANF_CUDA=ON)"); }
}  // namespace
bool cuda_available() { return false; }
void* cuda_alloc(int64_t) { no_cuda(); }
void cuda_free(void*) {}
void cuda_memcpy(void*, const void*, int64_t, Device, Device) { no_cuda(); }
void cuda_synchronize() { no_cuda(); }
void cuda_select_device(int) { no_cuda(); }
int cuda_device_count() { return 0; }
std::string cuda_device_name() { no_cuda(); }
}  // namespace sanf
#endif
