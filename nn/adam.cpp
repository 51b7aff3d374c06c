// nn/adam.cpp: bookkeeping around the fused kernel.
#include "nn/adam.h"

#include <algorithm>

#include "kernels/adam.h"
#include "kernels/copy.h"

namespace sanf::nn {

Adam::Adam(std::vector<std::pair<std::string, Tensor*>> params, AdamOptions options) : opt_(options) {
  SANF_CHECK(opt_.lr >= 0 && opt_.eps >= 0 && opt_.weight_decay >= 0, "[Adam] lr, eps and weight_decay must be >= 0");
  SANF_CHECK(opt_.beta1 >= 0 && opt_.beta1 < 1 && opt_.beta2 >= 0 && opt_.beta2 < 1,
             "[Adam] betas must lie in [0, 1), got ", opt_.beta1, ", ", opt_.beta2);
  for (auto& [name, p] : params) {
    SANF_CHECK(p && p->defined() && p->requires_grad() && p->is_contiguous(), "[Adam] parameter '", name,
               "' must be a contiguous tensor that requires grad");
    slots_.push_back({name, p, Tensor(), Tensor(), 0});
  }
}

void Adam::step() {
  // Parameters of one device and dtype (normally all of them) are updated by one kernel call.
  struct Group {
    Device device;
    DType dtype;
    std::vector<kernels::AdamSlot> slots;
  };
  // Every gradient is checked before any state changes, so a bad one leaves the optimiser as it was.
  for (Slot& s : slots_) {
    const Tensor grad = s.param->grad();
    SANF_CHECK(!grad.defined() || (grad.shape() == s.param->shape() && grad.dtype() == s.param->dtype() &&
                                   grad.device() == s.param->device() && grad.is_contiguous()),
               "[Adam] gradient of '", s.name, "' is ", grad.info(), ", parameter is ", s.param->info());
  }
  std::vector<Group> groups;
  for (Slot& s : slots_) {
    const Tensor grad = s.param->grad();
    if (!grad.defined()) continue;
    if (!s.exp_avg.defined()) {
      s.exp_avg = zeros_like(*s.param);
      s.exp_avg_sq = zeros_like(*s.param);
    }
    ++s.step;
    auto g = std::find_if(groups.begin(), groups.end(), [&](const Group& x) {
      return x.device == s.param->device() && x.dtype == s.param->dtype();
    });
    if (g == groups.end()) g = groups.insert(groups.end(), Group{s.param->device(), s.param->dtype(), {}});
    g->slots.push_back({s.param->data_ptr(), grad.data_ptr(), s.exp_avg.data_ptr(), s.exp_avg_sq.data_ptr(),
                        s.param->numel(), s.step});
  }
  const kernels::AdamArgs a{opt_.lr, opt_.beta1, opt_.beta2, opt_.eps, opt_.weight_decay, 0};
  for (const Group& g : groups) kernels::adam_multi(g.device, g.dtype, g.slots, a);
}

void Adam::zero_grad() {
  for (Slot& s : slots_) s.param->zero_grad();
}

std::vector<std::pair<std::string, Tensor>> Adam::state_dict(const std::string& prefix) const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const Slot& s : slots_) {
    if (!s.exp_avg.defined()) continue;
    out.push_back({prefix + "step." + s.name, Tensor::from_vector({double(s.step)}, {}, DType::I64)});
    out.push_back({prefix + "exp_avg." + s.name, s.exp_avg});
    out.push_back({prefix + "exp_avg_sq." + s.name, s.exp_avg_sq});
  }
  return out;
}

void Adam::load_state_dict(const std::map<std::string, Tensor>& state, const std::string& source,
                           const std::string& prefix) {
  // Validate everything first, then assign, so a bad file leaves the optimiser as it was.
  struct Pending {
    Slot* slot;
    Tensor m, v;
    int64_t step;
  };
  std::vector<Pending> pending;
  for (Slot& s : slots_) {
    auto st = state.find(prefix + "step." + s.name);
    if (st == state.end()) continue;  // no state yet for this parameter
    auto m = state.find(prefix + "exp_avg." + s.name), v = state.find(prefix + "exp_avg_sq." + s.name);
    SANF_CHECK(m != state.end() && v != state.end(), source, ": optimiser state of '", s.name, "' is incomplete");
    SANF_CHECK(m->second.shape() == s.param->shape() && v->second.shape() == s.param->shape(), source,
               ": optimiser state of '", s.name, "' has shape ", shape_str(m->second.shape()), ", parameter has ",
               shape_str(s.param->shape()));
    SANF_CHECK(st->second.numel() == 1 && st->second.item() >= 1, source, ": bad step count for '", s.name, "'");
    pending.push_back({&s, m->second, v->second, int64_t(st->second.item())});
  }
  for (Pending& p : pending) {
    p.slot->exp_avg = Tensor::empty(p.slot->param->shape(), p.slot->param->dtype(), p.slot->param->device());
    p.slot->exp_avg_sq = zeros_like(p.slot->exp_avg);
    kernels::copy(p.slot->exp_avg, to(p.m, p.slot->param->device()));
    kernels::copy(p.slot->exp_avg_sq, to(p.v, p.slot->param->device()));
    p.slot->step = p.step;
  }
}

}  // namespace sanf::nn
