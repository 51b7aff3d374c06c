// examples/02_autograd_by_hand.cpp: reverse-mode differentiation, once by hand and once by the engine.
//
//   h = W x + b         W (3, 4), x (4), b (3)
//   a = tanh(h)
//   y = sum(a^2)        a scalar
//
// The chain rule, from the output back (each line uses only the line above it and what the forward kept):
//   dy/da = 2 a
//   dy/dh = dy/da * (1 - a^2)              tanh' = 1 - tanh^2: the backward needs tanh's OUTPUT, not h
//   dy/db = dy/dh
//   dy/dW = dy/dh x^T                      an outer product (3, 4)
//   dy/dx = W^T dy/dh
// The engine (autograd/engine.h) does exactly this: every op recorded a Node with a closure mapping the
// gradient of its output to gradients of its inputs; backward(y) runs those closures in reverse order.
#include <cmath>
#include <cstdio>
#include <set>

#include "autograd/ops.h"
#include "examples/check.h"

using namespace sanf;
using example::check;

namespace {
double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return a.size() == b.size() ? m : INFINITY;
}

// The graph behind y, printed from the root: each node's op name and the nodes (or leaves) it came from.
// It is a DAG, not a tree: square(a) is mul(a, a), so the tanh node feeds it twice (and backward adds both
// contributions). A node met again is only named.
void print_graph(const std::shared_ptr<Node>& node, int depth, std::set<const Node*>& seen) {
  const bool again = !seen.insert(node.get()).second;
  std::printf("%*s%s%s\n", 2 * depth + 4, "", node->name.c_str(), again ? " (the same node as above)" : "");
  if (again) return;
  for (const Edge& e : node->inputs) {
    if (e.fn)
      print_graph(e.fn, depth + 1, seen);
    else if (e.leaf)
      std::printf("%*sleaf %s\n", 2 * depth + 6, "", shape_str(e.shape).c_str());
  }
}
}  // namespace

int main() {
  // f64 leaves that require grad: the engine accumulates their gradients into .grad().
  Generator gen(7);
  Tensor W = randn({3, 4}, DType::F64, Device::CPU, &gen).set_requires_grad(true);
  Tensor x = randn({4}, DType::F64, Device::CPU, &gen).set_requires_grad(true);
  Tensor b = randn({3}, DType::F64, Device::CPU, &gen).set_requires_grad(true);

  // ---- the engine: build the graph by computing, then one backward call ----
  Tensor a = tanh(add(matmul(W, x), b));
  Tensor y = sum(square(a));
  std::printf("y = %.10f; the graph the forward recorded (root first):\n", y.item());
  std::set<const Node*> seen;
  print_graph(y.grad_fn(), 0, seen);
  backward(y);

  // ---- by hand: plain loops over the numbers, following the chain rule above ----
  const std::vector<double> w = W.to_vector(), xv = x.to_vector(), bv = b.to_vector();
  std::vector<double> av(3), dh(3), dW(12), dx(4, 0.0);
  double yv = 0;
  for (int i = 0; i < 3; ++i) {
    double h = bv[size_t(i)];
    for (int j = 0; j < 4; ++j) h += w[size_t(i * 4 + j)] * xv[size_t(j)];
    av[size_t(i)] = std::tanh(h);
    yv += av[size_t(i)] * av[size_t(i)];
  }
  for (int i = 0; i < 3; ++i) {
    const double da = 2 * av[size_t(i)];                       // dy/da
    dh[size_t(i)] = da * (1 - av[size_t(i)] * av[size_t(i)]);  // dy/dh (= dy/db)
    for (int j = 0; j < 4; ++j) {
      dW[size_t(i * 4 + j)] = dh[size_t(i)] * xv[size_t(j)];  // dy/dW = dh x^T
      dx[size_t(j)] += w[size_t(i * 4 + j)] * dh[size_t(i)];  // dy/dx = W^T dh
    }
  }

  // ---- they agree (f64: to rounding) ----
  std::printf("by hand y = %.10f\n", yv);
  const double eW = max_abs_diff(W.grad().to_vector(), dW), eb = max_abs_diff(b.grad().to_vector(), dh),
               ex = max_abs_diff(x.grad().to_vector(), dx);
  std::printf("dy/db: engine %+.6f %+.6f %+.6f, by hand %+.6f %+.6f %+.6f\n", b.grad().to_vector()[0],
              b.grad().to_vector()[1], b.grad().to_vector()[2], dh[0], dh[1], dh[2]);
  check(std::abs(y.item() - yv) < 1e-12, "y agrees");
  check(eW < 1e-12, "dy/dW agrees (max difference %.1e)", eW);
  check(eb < 1e-12, "dy/db agrees (max difference %.1e)", eb);
  check(ex < 1e-12, "dy/dx agrees (max difference %.1e)", ex);

  // Gradients ACCUMULATE into .grad(): a second backward adds the same again. Optimisers therefore clear
  // them before each step (zero_grad).
  backward(sum(square(tanh(add(matmul(W, x), b)))));
  check(max_abs_diff(b.grad().to_vector(), {2 * dh[0], 2 * dh[1], 2 * dh[2]}) < 1e-12,
        "a second backward doubles b.grad() (gradients accumulate)");
  b.zero_grad();
  check(!b.grad().defined(), "zero_grad() clears it");
  return example::finish("02_autograd_by_hand");
}
