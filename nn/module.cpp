// nn/module.cpp: registration, traversal and (strict) state dicts.
#include "nn/module.h"

#include <set>

#include "kernels/copy.h"

namespace sanf::nn {

void Module::register_parameter(const std::string& name, Tensor& t) {
  SANF_CHECK(t.defined(), "register_parameter('", name, "'): undefined tensor");
  t.set_requires_grad(true);
  params_.push_back({name, &t});
}
void Module::register_buffer(const std::string& name, Tensor& t) {
  SANF_CHECK(t.defined(), "register_buffer('", name, "'): undefined tensor");
  buffers_.push_back({name, &t});
}
void Module::register_module(const std::string& name, Module& m) { children_.push_back({name, &m}); }

void Module::collect(const std::string& prefix, bool buffers, std::vector<std::pair<std::string, Tensor*>>& out) {
  for (auto& [n, t] : buffers ? buffers_ : params_) out.push_back({prefix + n, t});
  for (auto& [n, m] : children_) m->collect(prefix + n + ".", buffers, out);
}

std::vector<std::pair<std::string, Tensor*>> Module::named_parameters() {
  std::vector<std::pair<std::string, Tensor*>> out;
  collect("", false, out);
  return out;
}
std::vector<std::pair<std::string, Tensor*>> Module::named_buffers() {
  std::vector<std::pair<std::string, Tensor*>> out;
  collect("", true, out);
  return out;
}
std::vector<Tensor> Module::parameters() {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(*t);
  return out;
}
int64_t Module::parameter_count() {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t->numel();
  return n;
}

std::vector<std::pair<std::string, Tensor>> Module::state_dict() {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [n, t] : named_parameters()) out.push_back({n, detach(*t)});
  for (auto& [n, t] : named_buffers()) out.push_back({n, detach(*t)});
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, const std::string& source) {
  auto all = named_parameters();
  for (auto& b : named_buffers()) all.push_back(b);
  std::vector<std::string> missing;
  std::set<std::string> used;
  for (auto& [name, t] : all) {
    auto it = state.find(name);
    if (it == state.end()) {
      missing.push_back(name);
      continue;
    }
    SANF_CHECK(it->second.shape() == t->shape(), source, ": tensor '", name, "' has shape ",
               shape_str(it->second.shape()), ", the model expects ", shape_str(t->shape()));
    SANF_CHECK(is_floating(it->second.dtype()) == is_floating(t->dtype()), source, ": tensor '", name, "' is ",
               dtype_name(it->second.dtype()), ", the model expects ", dtype_name(t->dtype()));
    used.insert(name);
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 10; ++i) list += (i ? ", " : "") + missing[i];
    SANF_FAIL(source, ": ", missing.size(), " tensor(s) missing: ", list, missing.size() > 10 ? ", ..." : "");
  }
  std::vector<std::string> unexpected;
  for (auto& [name, t] : state)
    if (!used.count(name)) unexpected.push_back(name);
  if (!unexpected.empty()) {
    std::string list;
    for (size_t i = 0; i < unexpected.size() && i < 10; ++i) list += (i ? ", " : "") + unexpected[i];
    SANF_FAIL(source, ": ", unexpected.size(), " unexpected tensor(s): ", list, unexpected.size() > 10 ? ", ..." : "");
  }
  // All checks passed: only now copy, so a failed load leaves the model untouched.
  for (auto& [name, t] : all) {
    Tensor src = state.at(name);
    if (src.device() != t->device()) src = sanf::to(src, t->device());
    kernels::copy(*t, src);  // converts dtype
  }
}

// Replace every parameter and buffer that `convert` changes (it returns its input when nothing changes);
// parameters stay trainable leaves, buffers stay plain tensors.
void Module::convert_all(const std::function<Tensor(const Tensor&)>& convert) {
  for (auto& [n, t] : named_parameters()) {
    Tensor c = convert(*t);
    if (c.get() == t->get()) continue;
    *t = detach(c);
    t->set_requires_grad(true);
  }
  for (auto& [n, t] : named_buffers()) *t = detach(convert(*t));
}

void Module::to(Device device) {
  convert_all([device](const Tensor& t) { return sanf::to(t, device); });
}

void Module::to(DType dtype) {  // integer buffers (e.g. permutations) keep their dtype
  convert_all([dtype](const Tensor& t) { return is_floating(t.dtype()) ? sanf::to(t, dtype) : t; });
}

void Module::zero_grad() {
  for (auto& [n, t] : named_parameters()) t->zero_grad();
}

void Module::set_requires_grad(bool on) {
  for (auto& [n, t] : named_parameters()) t->set_requires_grad(on);
}

}  // namespace sanf::nn
