// kernels/random.h: filling a contiguous tensor with random numbers, drawn on the tensor's own device.
//
// CPU (kernels/cpu/random.cpp): element by element, in order, from the sanf Generator (core/rng.h:
// xoshiro256**, Box-Muller normals, 53-bit uniforms), each double converted to the tensor's dtype. The same
// seed gives the same values on every machine.
//
// CUDA (kernels/cuda/random.cu): cuRAND's Philox4x32-10 counter-based generator, on the device, so a large
// random tensor is never built on the host and copied over PCIe. Each fill takes ONE 64-bit value from the
// sanf Generator as the Philox seed (offset 0, cuRAND's LEGACY ordering, whose sequence cuRAND guarantees
// across releases and GPUs): a seeded Generator gives the same device tensors run after run, and successive
// fills get independent streams. The CUDA stream is NOT the CPU stream: randn(shape, f32, CUDA, &g) and
// randn(shape, f32, CPU, &g) with equal seeds hold different numbers of the same distribution. (The normals
// come from cuRAND's Box-Muller in f32 or f64; cuRAND notes that a newer CUDA math library may change
// their last bits.) Uniforms are in [0, 1): cuRAND's are in (0, 1], and its 1.0 is mapped to 0. In a dtype
// coarser than the draw (f32 from the CPU's doubles; bf16 and f16 on both devices) a uniform within half a
// unit of 1 would round up to 1.0, so uniforms are first capped at uniform_cap(dt), the dtype's largest
// value below 1 (that value takes the little extra mass of the interval above it).
//
// Where identical values on both devices matter (model initialisation: a seed must fix the model on every
// device), draw on the CPU and move the tensor (vit/vit.cpp does that; trunc_normal always draws on the host).
#pragma once

#include "core/rng.h"
#include "kernels/dispatch.h"

namespace sanf::kernels {

// The largest value below 1 of dt (1 - 2^-8 in bf16, 1 - 2^-11 in f16, 1 - 2^-24 in f32, 1 - 2^-53 in
// f64 and the integer dtypes, into which uniforms truncate to 0 anyway).
inline double uniform_cap(DType dt) {
  switch (dt) {
    case DType::BF16: return 1.0 - 0x1p-8;
    case DType::F16: return 1.0 - 0x1p-11;
    case DType::F32: return 1.0 - 0x1p-24;
    default: return 1.0 - 0x1p-53;
  }
}

namespace cpu {
// dst[0..n) = standard normals / uniforms in [0, 1) from g, converted to dt (any dtype).
void normal(DType dt, void* dst, int64_t n, Generator& g);
void uniform(DType dt, void* dst, int64_t n, Generator& g);
}  // namespace cpu
namespace cuda {
// dst[0..n) on the device, from a Philox generator seeded with `seed` (any dtype: f32 and f64 are drawn
// directly, others drawn in f32 and converted).
void normal(DType dt, void* dst, int64_t n, uint64_t seed);
void uniform(DType dt, void* dst, int64_t n, uint64_t seed);
}  // namespace cuda

// dst: contiguous, any device. The CUDA branch consumes one value of g (the Philox seed); the CPU branch
// one draw per element (two uniforms per pair of normals).
inline void fill_normal(const Tensor& dst, Generator& g) {
  SANF_CHECK(dst.is_contiguous(), "[randn] needs a contiguous tensor, got ", dst.info());
  if (dst.numel() == 0) return;
  SANF_DEVICE_SWITCH(dst.device(), "randn", cpu::normal(dst.dtype(), dst.data_ptr(), dst.numel(), g),
                     cuda::normal(dst.dtype(), dst.data_ptr(), dst.numel(), g.next_u64()));
}

inline void fill_uniform(const Tensor& dst, Generator& g) {
  SANF_CHECK(dst.is_contiguous(), "[rand] needs a contiguous tensor, got ", dst.info());
  if (dst.numel() == 0) return;
  SANF_DEVICE_SWITCH(dst.device(), "rand", cpu::uniform(dst.dtype(), dst.data_ptr(), dst.numel(), g),
                     cuda::uniform(dst.dtype(), dst.data_ptr(), dst.numel(), g.next_u64()));
}

}  // namespace sanf::kernels
