// kernels/copy.h: strided copy with dtype conversion, and fill.
//
// copy is the workhorse behind contiguous(), to(dtype), concat (copy into a narrow view of the output)
// and the backward of narrow/expand-free views: any strides in, any strides out, any dtype pair.
#pragma once

#include "kernels/dispatch.h"

namespace sanf::kernels {

namespace cpu {
// dst[i] = convert(src[i]) for every multi-index i of the common shape (ls.shape == ld.shape).
void copy(DType src_dt, const void* src, Layout ls, DType dst_dt, void* dst, Layout ld);
// dst[0..n) = value (converted to dt).
void fill(DType dt, void* dst, int64_t n, double value);
}  // namespace cpu
namespace cuda {
void copy(DType src_dt, const void* src, Layout ls, DType dst_dt, void* dst, Layout ld);
void fill(DType dt, void* dst, int64_t n, double value);
}  // namespace cuda

// dst and src: same shape and device, any strides and dtypes. dst must not overlap src.
inline void copy(const Tensor& dst, const Tensor& src) {
  SANF_CHECK(dst.shape() == src.shape(), "[copy] shapes differ: ", shape_str(dst.shape()), " <- ",
             shape_str(src.shape()));
  SANF_CHECK(dst.device() == src.device(), "[copy] devices differ: ", dst.device(), " <- ", src.device());
  if (dst.numel() == 0) return;
  SANF_DEVICE_SWITCH(dst.device(), "copy",
                     cpu::copy(src.dtype(), src.data_ptr(), src.layout(), dst.dtype(), dst.data_ptr(), dst.layout()),
                     cuda::copy(src.dtype(), src.data_ptr(), src.layout(), dst.dtype(), dst.data_ptr(), dst.layout()));
}

// dst: contiguous.
inline void fill(const Tensor& dst, double value) {
  SANF_CHECK(dst.is_contiguous(), "[fill] needs a contiguous tensor");
  if (dst.numel() == 0) return;
  SANF_DEVICE_SWITCH(dst.device(), "fill", cpu::fill(dst.dtype(), dst.data_ptr(), dst.numel(), value),
                     cuda::fill(dst.dtype(), dst.data_ptr(), dst.numel(), value));
}

}  // namespace sanf::kernels
