// autograd/engine.h: reverse-mode automatic differentiation.
//
// Every differentiable op computes its output with kernels, then (when grad mode is on and an input
// requires grad) records a Node: which inputs it came from (edges) and a closure that maps the gradient of
// the output to gradients of the inputs. The closure sits in the op's own file, right below the forward.
//
// backward(root) walks the graph once in reverse topological order: each node's incoming gradients are
// summed first (a tensor used twice gets both contributions), its closure runs once, and the results flow
// to the nodes that made its inputs, or, for leaves that require grad, are added into leaf.grad(). Gradients
// of intermediate tensors are freed as soon as their node has run. The closures run with grad mode off
// (no higher-order gradients).
//
// Rule for op authors: never capture the op's own output Tensor in its closure (that is a reference cycle
// output -> node -> closure -> output); capture `detach(out)`, which shares the storage only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace sanf {

// Gradient closure: (grad of the output, which inputs need a gradient) -> one gradient per input
// (undefined where not needed). Each returned gradient must have its input's shape, dtype and device.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad, const std::vector<bool>& needs)>;

struct Edge {
  std::shared_ptr<Node> fn;            // the node that made the input, or
  std::shared_ptr<TensorImpl> leaf;    // the input itself, if it is a leaf that requires grad
  Shape shape;                         // the input's shape, dtype and device, to check the closure's result
  DType dtype = DType::F32;
  Device device = Device::CPU;
  bool needed() const { return fn || leaf; }
};

struct Node {
  std::string name;  // the op's name, used in error messages ("[matmul] backward: ...")
  std::vector<Edge> inputs;
  BackwardFn backward;
};

// Grad mode (thread-local, on by default). NoGradGuard turns it off for a scope.
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// Attach a Node to `out` if grad mode is on and any input requires grad; returns `out`. Used by every op:
//   return record("exp", out, {x}, [y = detach(out)](const Tensor& g, auto&) { return {mul(g, y)}; });
Tensor record(const char* name, Tensor out, const std::vector<Tensor>& inputs, BackwardFn backward);

// Reverse-mode sweep from `root`. With no `grad`, root must have one element and its gradient is 1.
void backward(const Tensor& root, const Tensor& grad = Tensor());

// A tensor sharing `x`'s storage and view, with no history and requires_grad false.
Tensor detach(const Tensor& x);

}  // namespace sanf
