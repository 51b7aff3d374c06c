// autograd/ops/binary.cpp: add, sub, mul, div of two tensors with NumPy broadcasting.
//
// Forward: both operands are viewed at the broadcast shape (stride 0 where they are broadcast) and the
// kernel writes a contiguous output. Backward, with g the output gradient and sum_to summing over the
// broadcast dims (the adjoint of broadcasting):
//   add: da = g,        db = g
//   sub: da = g,        db = -g
//   mul: da = g * b,    db = g * a
//   div: da = g / b,    db = -g * a / b^2
#include "autograd/ops/common.h"
#include "kernels/elementwise.h"

namespace sanf {

using namespace ops_detail;
using kernels::BinaryOp;

namespace {
Tensor binary_op(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = kernels::binary_name(op);
  check_float(name, a);
  check_same(name, a, b);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  kernels::binary(op, broadcast_view(a, shape), broadcast_view(b, shape), out);
  return record(name, out, {a, b},
                [op, a = detach(a), b = detach(b)](const Tensor& g, const std::vector<bool>& needs) {
                  Tensor da, db;
                  switch (op) {
                    case BinaryOp::Add:
                      if (needs[0]) da = g;
                      if (needs[1]) db = g;
                      break;
                    case BinaryOp::Sub:
                      if (needs[0]) da = g;
                      if (needs[1]) db = neg(g);
                      break;
                    case BinaryOp::Mul:
                      if (needs[0]) da = mul(g, b);
                      if (needs[1]) db = mul(g, a);
                      break;
                    case BinaryOp::Div:
                      if (needs[0]) da = div(g, b);
                      if (needs[1]) db = neg(div(mul(g, a), mul(b, b)));
                      break;
                  }
                  if (da.defined()) da = sum_to(da, a.shape());
                  if (db.defined()) db = sum_to(db, b.shape());
                  return std::vector<Tensor>{da, db};
                });
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::Div, a, b); }

}  // namespace sanf
