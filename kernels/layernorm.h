// kernels/layernorm.h: layer norm over the last axis of a contiguous (rows, cols) block.
//
// Forward, per row:  mean = sum_j x_j / C;  var = sum_j (x_j - mean)^2 / C  (biased, as PyTorch);
//                    rstd = 1 / sqrt(var + eps);  xhat_j = (x_j - mean) * rstd;  y_j = xhat_j * w_j + b_j
// mean and rstd are saved (one per row) for the backward:
//   g_j = dy_j * w_j
//   dx_j = rstd * (g_j - mean_k(g_k) - xhat_j * mean_k(g_k * xhat_k))
//   dw_j = sum_rows dy_j * xhat_j;   db_j = sum_rows dy_j
#pragma once

#include "kernels/dispatch.h"

namespace sanf::kernels {

// layernorm_to_bf16: the f32 forward with y rounded to bf16 as it is written (bit for bit to(y, BF16) of
// layernorm's f32 y), for a layer norm whose output only feeds a bf16 GEMM (layer_norm_bf16, autograd/fast.h).
namespace cpu {
// x, y: (rows, cols); w, b: (cols); mean, rstd: (rows), written.
void layernorm(DType dt, const void* x, const void* w, const void* b, void* y, void* mean, void* rstd, int64_t rows,
               int64_t cols, double eps);
void layernorm_to_bf16(const float* x, const float* w, const float* b, bf16* y, float* mean, float* rstd, int64_t rows,
                       int64_t cols, double eps);
// dx: (rows, cols), dw, db: (cols): all fully written (not accumulated).
void layernorm_backward(DType dt, const void* x, const void* w, const void* mean, const void* rstd, const void* dy,
                        void* dx, void* dw, void* db, int64_t rows, int64_t cols);
}  // namespace cpu
namespace cuda {
void layernorm(DType dt, const void* x, const void* w, const void* b, void* y, void* mean, void* rstd, int64_t rows,
               int64_t cols, double eps);
void layernorm_to_bf16(const float* x, const float* w, const float* b, bf16* y, float* mean, float* rstd, int64_t rows,
                       int64_t cols, double eps);
void layernorm_backward(DType dt, const void* x, const void* w, const void* mean, const void* rstd, const void* dy,
                        void* dx, void* dw, void* db, int64_t rows, int64_t cols);
}  // namespace cuda

inline void layernorm(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, const Tensor& mean,
                      const Tensor& rstd, int64_t rows, int64_t cols, double eps) {
  SANF_DEVICE_SWITCH(x.device(), "layer_norm",
                     cpu::layernorm(x.dtype(), x.data_ptr(), w.data_ptr(), b.data_ptr(), y.data_ptr(),
                                    mean.data_ptr(), rstd.data_ptr(), rows, cols, eps),
                     cuda::layernorm(x.dtype(), x.data_ptr(), w.data_ptr(), b.data_ptr(), y.data_ptr(),
                                     mean.data_ptr(), rstd.data_ptr(), rows, cols, eps));
}
inline void layernorm_to_bf16(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, const Tensor& mean,
                              const Tensor& rstd, int64_t rows, int64_t cols, double eps) {
  SANF_DEVICE_SWITCH(x.device(), "layer_norm_bf16",
                     cpu::layernorm_to_bf16(x.data<float>(), w.data<float>(), b.data<float>(), y.data<bf16>(),
                                            mean.data<float>(), rstd.data<float>(), rows, cols, eps),
                     cuda::layernorm_to_bf16(x.data<float>(), w.data<float>(), b.data<float>(), y.data<bf16>(),
                                             mean.data<float>(), rstd.data<float>(), rows, cols, eps));
}
inline void layernorm_backward(const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                               const Tensor& dy, const Tensor& dx, const Tensor& dw, const Tensor& db, int64_t rows,
                               int64_t cols) {
  SANF_DEVICE_SWITCH(x.device(), "layer_norm backward",
                     cpu::layernorm_backward(x.dtype(), x.data_ptr(), w.data_ptr(), mean.data_ptr(), rstd.data_ptr(),
                                             dy.data_ptr(), dx.data_ptr(), dw.data_ptr(), db.data_ptr(), rows, cols),
                     cuda::layernorm_backward(x.dtype(), x.data_ptr(), w.data_ptr(), mean.data_ptr(), rstd.data_ptr(),
                                              dy.data_ptr(), dx.data_ptr(), dw.data_ptr(), db.data_ptr(), rows, cols));
}

}  // namespace sanf::kernels
