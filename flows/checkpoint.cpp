// flows/checkpoint.cpp: saving and (strictly) loading a Flow, with optional Adam state.
//
// File layout (safetensors): __metadata__ = FlowConfig::to_metadata() plus the caller's extra keys;
// tensors = Module::state_dict() (parameters, then the "layers.<k>.perm" buffers) followed by
// Adam::state_dict("adam.") when an optimiser is given.
#include "core/safetensors.h"
#include "flows/flow.h"

namespace sanf::flows {

namespace {
const std::string kAdamPrefix = "adam.";
bool is_adam(const std::string& name) { return name.compare(0, kAdamPrefix.size(), kAdamPrefix) == 0; }
}  // namespace

void Flow::save(const std::string& path, const nn::Adam* adam, const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> meta = cfg_.to_metadata();
  for (auto& [k, v] : extra) {
    SANF_CHECK(!meta.count(k), "[flow save] ", path, ": extra metadata key '", k, "' clashes with the flow config");
    meta[k] = v;
  }
  std::vector<std::pair<std::string, Tensor>> tensors = state_dict();
  if (adam)
    for (auto& entry : adam->state_dict(kAdamPrefix)) tensors.push_back(entry);
  save_safetensors(path, tensors, meta);
}

FlowConfig Flow::read_config(const std::string& path) {
  return FlowConfig::from_metadata(SafetensorsFile::open(path).metadata(), path);
}

void Flow::load(const std::string& path, nn::Adam* adam) {
  SafetensorsFile f = SafetensorsFile::open(path);
  const FlowConfig file_cfg = FlowConfig::from_metadata(f.metadata(), path);
  // Same architecture, key by key, so the error names the first field that differs.
  const auto mine = cfg_.to_metadata(), theirs = file_cfg.to_metadata();
  for (auto& [key, value] : mine)
    SANF_CHECK(key == "flow.seed" || theirs.at(key) == value, path, ": ", key, " is ", theirs.at(key),
               " in the file, but this flow has ", value);

  std::map<std::string, Tensor> model, all;
  for (const TensorEntry& e : f.entries()) {
    all[e.name] = f.get(e.name);
    if (!is_adam(e.name)) model[e.name] = all[e.name];
  }
  if (adam) {
    // Validate the optimiser state first, on a scratch optimiser over the same parameters, so that neither
    // the model nor `adam` changes unless both loads will succeed.
    nn::Adam probe(named_parameters(), adam->options());
    probe.load_state_dict(all, path, kAdamPrefix);
  }
  load_tensors(model, path);  // validates everything, then copies
  if (adam) adam->load_state_dict(all, path, kAdamPrefix);
  cfg_.seed = file_cfg.seed;  // the weights now come from that seed's run
}

void Flow::load_tensors(const std::map<std::string, Tensor>& state, const std::string& source) {
  // Permutations must be permutations (index_select would catch out-of-range entries, not repeats).
  for (int64_t k = 0; k < cfg_.layers; ++k) {
    const std::string name = "layers." + std::to_string(k) + ".perm";
    auto it = state.find(name);
    if (it != state.end() && it->second.dtype() == DType::I64 && it->second.shape() == Shape{cfg_.dim})
      inverse_permutation(it->second, source + ": tensor '" + name + "'");
    else if (it != state.end())
      SANF_FAIL(source, ": tensor '", name, "' must be i64 of shape (", cfg_.dim, ",), got ", it->second.info());
  }
  load_state_dict(state, source);  // strict: validates everything, then copies
}

std::unique_ptr<Flow> Flow::from_file(const std::string& path, DType dtype, Device device) {
  auto flow = std::make_unique<Flow>(read_config(path), dtype, device);
  flow->load(path);
  return flow;
}

}  // namespace sanf::flows
