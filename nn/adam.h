// nn/adam.h: the Adam optimiser with PyTorch's semantics (torch.optim.Adam: weight decay is added to the
// gradient, not decoupled), its state saved and restored by name for exact resumption.
//
// The update itself is one fused kernel per parameter (kernels/adam.h has the formula). State is created
// lazily, per parameter, at its first update, and each parameter counts its own steps, as PyTorch does:
// a parameter without a gradient is skipped and its step does not advance.
// Construct the optimiser after moving the model to its device: the moments live where the parameters live.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"

namespace sanf::nn {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class Adam {
 public:
  // params: as given by Module::named_parameters(); the pointers must outlive the optimiser.
  Adam(std::vector<std::pair<std::string, Tensor*>> params, AdamOptions options);

  void step();
  void zero_grad();
  AdamOptions& options() { return opt_; }

  // "<prefix>step.<name>" (i64 scalar), "<prefix>exp_avg.<name>", "<prefix>exp_avg_sq.<name>" for every
  // parameter that has state.
  std::vector<std::pair<std::string, Tensor>> state_dict(const std::string& prefix = "adam.") const;
  // Restores state saved by state_dict (strict about shapes; names not under prefix are ignored).
  void load_state_dict(const std::map<std::string, Tensor>& state, const std::string& source,
                       const std::string& prefix = "adam.");

 private:
  struct Slot {
    std::string name;
    Tensor* param;
    Tensor exp_avg, exp_avg_sq;  // undefined until the first update
    int64_t step = 0;
  };
  std::vector<Slot> slots_;
  AdamOptions opt_;
};

}  // namespace sanf::nn
