// autograd/ops.h: the differentiable operations, the public tensor API.
//
// One file per op (family) in autograd/ops/: input checks, the forward through kernels/, and the backward
// closure right below it. Ops validate at entry and throw "[op] what: shapes". Every op works on f32 and f64
// (bf16/f16 tensors must be converted with to() first) on the CPU, and on CUDA in a CUDA build; all inputs
// of one op must share dtype and device.
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/engine.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace sanf {

// ---- factories (autograd/factory.cpp; not differentiable) ---------------------------------------------
Tensor zeros(const Shape& shape, DType dt = DType::F32, Device dev = Device::CPU);
Tensor ones(const Shape& shape, DType dt = DType::F32, Device dev = Device::CPU);
Tensor full(const Shape& shape, double value, DType dt = DType::F32, Device dev = Device::CPU);
Tensor zeros_like(const Tensor& x);
Tensor arange(int64_t n, DType dt = DType::I64, Device dev = Device::CPU);  // 0, 1, ..., n-1
// Random tensors from `gen` (default: the global generator), drawn on `dev` (kernels/random.h): on the CPU
// from the Generator's own stream; on CUDA by cuRAND Philox seeded with one value of `gen`, reproducible for
// a seed but NOT the same numbers as the CPU's. trunc_normal always draws on the host (then moves to `dev`),
// so initialisers give the same weights on every device; draw randn on the CPU and move it for the same.
Tensor randn(const Shape& shape, DType dt = DType::F32, Device dev = Device::CPU, Generator* gen = nullptr);
Tensor rand(const Shape& shape, DType dt = DType::F32, Device dev = Device::CPU, Generator* gen = nullptr);  // [0,1)
Tensor trunc_normal(const Shape& shape, double std, double lo, double hi, DType dt = DType::F32,
                    Device dev = Device::CPU, Generator* gen = nullptr);  // mean 0, timm's trunc_normal_

// ---- conversion and copies (autograd/ops/copy.cpp) ----------------------------------------------------
Tensor contiguous(const Tensor& x);               // x itself if already contiguous
Tensor clone(const Tensor& x);                    // always a new contiguous copy
Tensor to(const Tensor& x, DType dt);             // differentiable between floating dtypes
Tensor to(const Tensor& x, Device dev);           // differentiable

// ---- views: no copy, differentiable (autograd/ops/view.cpp) ------------------------------------------
Tensor reshape(const Tensor& x, const Shape& shape);   // one -1 allowed; copies only if x cannot be viewed
Tensor flatten(const Tensor& x, int start_dim = 0, int end_dim = -1);
Tensor transpose(const Tensor& x, int d0, int d1);
Tensor permute(const Tensor& x, const std::vector<int>& dims);
Tensor narrow(const Tensor& x, int dim, int64_t start, int64_t length);
Tensor select(const Tensor& x, int dim, int64_t index);  // narrow + drop the dim
Tensor expand(const Tensor& x, const Shape& shape);      // broadcast size-1 (or new leading) dims
Tensor unsqueeze(const Tensor& x, int dim);
Tensor squeeze(const Tensor& x, int dim);

// ---- joining and indexing (autograd/ops/join.cpp, autograd/ops/index.cpp) ------------------------------
Tensor concat(const std::vector<Tensor>& xs, int dim);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim);  // views
std::vector<Tensor> chunk(const Tensor& x, int chunks, int dim);                         // equal views
// index: 1-D i64, any device; every entry is range-checked on the host first. check = false skips that
// check (on CUDA it copies the index to the host, which waits for the device): only for an index the caller
// has already checked and placed on x's device (FLL's permutation, checked when built or loaded).
Tensor index_select(const Tensor& x, int dim, const Tensor& index, bool check = true);

// ---- elementwise (autograd/ops/unary.cpp, autograd/ops/binary.cpp) ------------------------------------
Tensor add(const Tensor& a, const Tensor& b);  // broadcasting
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& x, double s);
Tensor mul(const Tensor& x, double s);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor pow(const Tensor& x, double p);
Tensor atan(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x);  // exact: x * Phi(x), with erf
Tensor square(const Tensor& x);  // x * x

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }
inline Tensor operator+(const Tensor& x, double s) { return add(x, s); }
inline Tensor operator+(double s, const Tensor& x) { return add(x, s); }
inline Tensor operator-(const Tensor& x, double s) { return add(x, -s); }
inline Tensor operator-(double s, const Tensor& x) { return add(neg(x), s); }
inline Tensor operator*(const Tensor& x, double s) { return mul(x, s); }
inline Tensor operator*(double s, const Tensor& x) { return mul(x, s); }
inline Tensor operator/(const Tensor& x, double s) { return mul(x, 1.0 / s); }
inline Tensor operator/(double s, const Tensor& x) { return mul(pow(x, -1.0), s); }

// ---- reductions (autograd/ops/reduce.cpp, softmax.cpp, cross_entropy.cpp) ------------------------------
// Over the given dims (negative allowed; empty = all dims), keeping them as size 1 with keepdim.
Tensor sum(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
Tensor max(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);  // values; grad to first max
// Sum `g` down to `shape` (the adjoint of broadcasting `shape` up to g's shape).
Tensor sum_to(const Tensor& g, const Shape& shape);
Tensor softmax(const Tensor& x, int dim);
Tensor log_softmax(const Tensor& x, int dim);
// The classification loss (autograd/ops/cross_entropy.cpp): logits (N, C), labels (N) i64 in [0, C) on any
// device -> the scalar mean over rows of -log softmax(logits[r])[labels[r]], computed stably (max-subtracted
// log-sum-exp). Differentiable in the logits; a label out of range is an error naming it and its row.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels);

// ---- normalisation and linear algebra (autograd/ops/layernorm.cpp, autograd/ops/matmul.cpp) -------------
// Over the last dim; weight, bias: (D).
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps);
// (..., M, K) @ (..., K, N) -> (..., M, N), batch dims broadcast; 1-D operands as in NumPy.
Tensor matmul(const Tensor& a, const Tensor& b);
// The textbook matmul, for reading and testing: (M, K) @ (K, N) only, operands copied to contiguous, the
// backward dA = dC B^T, dB = A^T dC written with matmul_reference itself. Same numbers as matmul.
Tensor matmul_reference(const Tensor& a, const Tensor& b);
// x: (..., in), weight: (out, in), bias: (out) or undefined -> (..., out) = x W^T + b.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
// gelu(linear(x, weight, bias)) in one pass: the GEMM applies the GELU as it writes each element (fused; its
// backward is its own, through the saved pre-activation when autograd needs it).
Tensor linear_gelu(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
// The bf16 inference ops (linear_bf16, matmul_bf16, softmax_bf16, attention_bf16) are apart, in
// autograd/fast.h.

// ---- vision (autograd/ops/patchify.cpp, autograd/ops/pool.cpp) ----------------------------------------
// images (B, C, H, W) -> patches (B, (H/p)*(W/p), C*p*p), patch grid row-major, each patch flattened as
// (c, ky, kx): the layout of a conv weight (D, C, p, p) flattened, so conv-stride-p == patchify + linear.
Tensor patchify(const Tensor& images, int64_t p);
// tokens (B, Gh*Gw, D) -> (B, gh*gw, D): adaptive average pooling of the token grid (PyTorch's cells).
Tensor adaptive_avg_pool_tokens(const Tensor& tokens, int64_t Gh, int64_t Gw, int64_t gh, int64_t gw);

}  // namespace sanf
