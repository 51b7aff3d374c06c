// autograd/engine.cpp: graph recording and the reverse sweep.
#include "autograd/engine.h"

#include <unordered_map>
#include <unordered_set>

#include "autograd/ops.h"

namespace sanf {

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

Tensor detach(const Tensor& x) { return x.as_strided(x.shape(), x.strides(), x.offset()); }

Tensor record(const char* name, Tensor out, const std::vector<Tensor>& inputs, BackwardFn backward) {
  if (!g_grad_enabled) return out;
  bool any = false;
  for (const Tensor& t : inputs) any = any || (t.defined() && t.requires_grad());
  if (!any) return out;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->backward = std::move(backward);
  node->inputs.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    Edge e;
    if (t.defined() && t.requires_grad()) {
      if (t.grad_fn()) e.fn = t.grad_fn();
      else e.leaf = t.impl_ptr();
      e.shape = t.shape();
      e.dtype = t.dtype();
      e.device = t.device();
    }
    node->inputs.push_back(std::move(e));
  }
  // `out` was made by this op, so it is a fresh non-leaf: set its fields directly.
  out.get()->requires_grad = true;
  out.set_grad_fn(std::move(node));
  return out;
}

namespace {
// Nodes reachable from root, ordered so that every node comes before the nodes that made its inputs.
std::vector<Node*> topo_order(Node* root) {
  std::vector<Node*> post;  // post-order: inputs first
  std::unordered_set<Node*> seen{root};
  std::vector<std::pair<Node*, size_t>> stack{{root, 0}};  // iterative DFS: (node, next edge to visit)
  while (!stack.empty()) {
    auto& [node, i] = stack.back();
    if (i < node->inputs.size()) {
      Node* child = node->inputs[i++].fn.get();
      if (child && seen.insert(child).second) stack.push_back({child, 0});
    } else {
      post.push_back(node);
      stack.pop_back();
    }
  }
  return {post.rbegin(), post.rend()};
}

void accumulate(Tensor& slot, const Tensor& g) { slot = slot.defined() ? add(slot, g) : g; }
}  // namespace

void backward(const Tensor& root, const Tensor& grad) {
  SANF_CHECK(root.requires_grad(), "backward: the tensor does not require grad (no input of its graph does)");
  Tensor g0 = grad;
  if (!g0.defined()) {
    SANF_CHECK(root.numel() == 1, "backward: a gradient must be given for a non-scalar output ",
               shape_str(root.shape()));
    g0 = full(root.shape(), 1.0, root.dtype(), root.device());
  }
  SANF_CHECK(g0.shape() == root.shape(), "backward: gradient shape ", shape_str(g0.shape()),
             " differs from the output's ", shape_str(root.shape()));
  NoGradGuard no_grad;
  if (!root.grad_fn()) {  // root is itself a leaf
    Tensor slot = root.grad();
    accumulate(slot, g0);
    const_cast<Tensor&>(root).set_grad(contiguous(slot));
    return;
  }
  std::unordered_map<Node*, Tensor> pending;  // summed gradient flowing into each node's output
  pending[root.grad_fn().get()] = g0;
  for (Node* node : topo_order(root.grad_fn().get())) {
    auto it = pending.find(node);
    if (it == pending.end()) continue;  // no gradient reached this node
    Tensor g = std::move(it->second);
    pending.erase(it);  // intermediate gradients are freed as soon as they are used
    std::vector<bool> needs(node->inputs.size());
    for (size_t i = 0; i < needs.size(); ++i) needs[i] = node->inputs[i].needed();
    std::vector<Tensor> grads = node->backward(g, needs);
    SANF_CHECK(grads.size() == node->inputs.size(), "[", node->name, "] backward returned ", grads.size(),
               " gradients for ", node->inputs.size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      const Edge& e = node->inputs[i];
      if (!e.needed()) continue;
      const Tensor& gi = grads[i];
      SANF_CHECK(gi.defined(), "[", node->name, "] backward gave no gradient for input ", i);
      SANF_CHECK(gi.shape() == e.shape && gi.dtype() == e.dtype && gi.device() == e.device, "[", node->name,
                 "] backward gave gradient ", gi.info(), " for input ", i, " of ", dtype_name(e.dtype), " ",
                 device_name(e.device), " ", shape_str(e.shape));
      if (e.fn) {
        accumulate(pending[e.fn.get()], gi);
      } else {
        Tensor leaf(e.leaf);
        Tensor slot = leaf.grad();
        accumulate(slot, gi);
        leaf.set_grad(contiguous(slot));
      }
    }
  }
}

}  // namespace sanf
