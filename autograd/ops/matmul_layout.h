// autograd/ops/matmul_layout.h: planning a matrix multiply's operands so that no transpose is copied.
//
// The GEMM kernel (kernels/matmul.h) reads each operand as a stack of matrices, row-major with a row
// stride (ld) or transposed, one batch stride apart. Most operands a matmul meets already are such a stack
// as they lie in memory: a contiguous tensor; a transposed view (w.T in linear, k^T in attention, B^T and
// A^T in every backward), read with the trans flag; a batch broadcast along its leading dims (stride 0).
// as_operand describes a tensor that way and copies only what the kernel cannot read in place (rows with
// stride 0, batch dims without one common stride). gemm() then folds a batch that shares one B into the
// rows of a single GEMM (x @ W with x (B, N, D) is one (B*N, D) x (D, out) product).
//
// autograd/ops/matmul.cpp uses these for matmul and linear; matmul_reference there is the same arithmetic
// with every operand made contiguous first, the form to read before this one.
#pragma once

#include "autograd/ops/common.h"

namespace sanf::ops_detail {

// A stack of `batch` matrices, each (R, C), as the GEMM kernel reads it: element (b, r, c) is at
// p[b*stride + r*ld + c], or p[b*stride + c*ld + r] when trans, where p = data.data_ptr() (data also keeps
// the storage alive).
struct Operand {
  Tensor data;
  bool trans = false;
  int64_t ld = 1, stride = 0;
  // The stack of transposes (C, R): the same memory, read the other way.
  Operand t() const {
    Operand o = *this;
    o.trans = !trans;
    return o;
  }
};

// v: (batch..., R, C), any strides (broadcast included), as the kernel reads it; copies only what it
// cannot read in place.
Operand as_operand(const Tensor& v);
// x: (..., C) as one (rows, C) matrix: a view when the leading dims are one stride apart, else a copy.
Operand rows_operand(const Tensor& x);
// The number of rows of x: (..., C), the product of its leading dims.
int64_t count_rows(const Tensor& x);
// out (contiguous, batch x M x N) = act(a @ b + beta * out + bias), with a the (batch, M, K) stack and b
// the (batch, K, N) stack; bias (contiguous, N) optional, act GELU or the identity. A b shared by the whole
// batch with row-major a's one after another runs as one GEMM of batch * M rows.
void gemm(const Operand& a, const Operand& b, const Tensor& out, int64_t batch, int64_t M, int64_t N, int64_t K,
          double beta = 0.0, const Tensor& bias = Tensor(), bool gelu = false);

}  // namespace sanf::ops_detail
