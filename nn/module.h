// nn/module.h: Module, the base of every layer: named parameters, buffers, submodules, state dicts.
//
// A module registers its parameter tensors (trainable leaves), buffers (saved but not trained, e.g. a
// flow's channel permutation) and child modules by name, so that names compose as in PyTorch:
// "blocks.3.attn.qkv.weight". Registration stores pointers to the members, so modules are neither copied
// nor moved after construction.
//
// load_state_dict is strict: every parameter and buffer must be present with its exact shape, and no
// unexpected name may be left over; errors name the source (a file path) and the tensor. Values are copied
// into the existing tensors (converted to their dtype and device), so optimisers holding them stay valid.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"

namespace sanf::nn {

class Module {
 public:
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  // Recursive, in registration order, names prefixed with the path of submodule names.
  std::vector<std::pair<std::string, Tensor*>> named_parameters();
  std::vector<std::pair<std::string, Tensor*>> named_buffers();
  std::vector<Tensor> parameters();
  int64_t parameter_count();

  // Parameters and buffers by name (views of the live tensors, detached).
  std::vector<std::pair<std::string, Tensor>> state_dict();
  void load_state_dict(const std::map<std::string, Tensor>& state, const std::string& source);

  void to(Device device);  // moves parameters (keeping them trainable leaves) and buffers
  void to(DType dtype);    // floating parameters and buffers only
  void zero_grad();
  void set_requires_grad(bool on);

 protected:
  void register_parameter(const std::string& name, Tensor& t);  // marks t as requiring grad
  void register_buffer(const std::string& name, Tensor& t);
  void register_module(const std::string& name, Module& m);

 private:
  void collect(const std::string& prefix, bool buffers, std::vector<std::pair<std::string, Tensor*>>& out);
  void convert_all(const std::function<Tensor(const Tensor&)>& convert);
  std::vector<std::pair<std::string, Tensor*>> params_, buffers_;
  std::vector<std::pair<std::string, Module*>> children_;
};

}  // namespace sanf::nn
