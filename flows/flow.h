// flows/flow.h: the SANF flow (K FLLs), its negative log-likelihood, anomaly scores and checkpoints.
//
//   z = F(y; P) = FLL_K( ... FLL_1(y; P_1) ... ; P_K),   log|det dz/dy| = sum_k logdet_k
// where P_k is the patch tokens P with every earlier layer's permutation applied to their channels (so they
// stay aligned with y's channels). With a standard normal base density,
//   -log p(y | P) = 0.5 ||z||^2 - log|det J| + (D/2) log(2 pi)
// The library's NLL leaves out the constant (D/2) log(2 pi) (docs/METHOD.md §4); the training loss is its batch mean
// divided by D (nats per dimension). Scores: the NLL (default) or mean(z^2) (the authors' code).
//
// Checkpoints are safetensors: the FlowConfig as "flow.*" metadata, the parameters and the permutation
// buffers by their module names ("layers.0.perm", "layers.0.caff1.attn.q.weight", ...), and optionally an
// Adam state under "adam." (exact resumption). Loading is strict: same architecture, every tensor present
// with its shape, nothing unexpected (except "adam." entries when no optimiser is given).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "flows/config.h"
#include "flows/coupling.h"
#include "nn/adam.h"

namespace sanf::flows {

class Flow : public nn::Module {
 public:
  // Validates cfg, then draws every permutation and weight from Generator(cfg.seed).
  explicit Flow(const FlowConfig& cfg, DType dtype = DType::F32, Device device = Device::CPU);

  struct Output {
    Tensor z;       // (B, D)
    Tensor logdet;  // (B): log|det dz/dy| per sample
  };
  // y: (B, D); P: (B, N, D) with N = config().tokens (undefined allowed when no_caff). Pools P first if
  // config().pool_grid > 0.
  Output forward(const Tensor& y, const Tensor& P);
  // z: (B, D), P as for forward -> y with forward(y, P).z == z.
  Tensor inverse(const Tensor& z, const Tensor& P);

  // The class attention on the patch tokens, for anomaly maps. record_attention(true) makes every later
  // forward keep each CAFF's weights; patch_attention() then returns, for the last forward, the weight each
  // patch token received averaged over the heads and over the 2K CAFFs (two per layer): (B, N') f32, N'
  // the tokens CAFF sees (pool_grid^2 when pooled). Rows need not sum to 1: h's own key takes the rest.
  // A no-CAFF flow attends to no patch token: an error.
  void record_attention(bool on);
  Tensor patch_attention() const;

  const FlowConfig& config() const { return cfg_; }
  FLL& layer(int64_t k) { return *layers_.at(size_t(k)); }

  // Write config + parameters + permutations (+ adam's state under "adam.", + extra metadata) atomically.
  void save(const std::string& path, const nn::Adam* adam = nullptr,
            const std::map<std::string, std::string>& extra_metadata = {});
  // Strict load into this flow (its architecture must match the file's); restores adam's state if given.
  // Everything is validated before anything is copied, so a bad file leaves the flow untouched.
  void load(const std::string& path, nn::Adam* adam = nullptr);
  // The same from tensors already read (parameters and permutations by name; no Adam state), e.g. the
  // "flow." part of an exported model; `source` names them in errors.
  void load_tensors(const std::map<std::string, Tensor>& state, const std::string& source);
  // The config stored in a checkpoint, and a flow rebuilt from it with the file's weights.
  static FlowConfig read_config(const std::string& path);
  static std::unique_ptr<Flow> from_file(const std::string& path, DType dtype = DType::F32,
                                         Device device = Device::CPU);

 private:
  // Checks y and P against the config and returns the tokens the layers see (pooled, or undefined).
  Tensor prepare_tokens(const Tensor& y, const Tensor& P, const char* op) const;

  FlowConfig cfg_;
  std::vector<std::unique_ptr<FLL>> layers_;
};

// NLL per sample without the constant: 0.5 ||z||^2 - logdet -> (B).
Tensor nll(const Flow::Output& out);
// The training loss: mean over the batch of nll, divided by D -> scalar.
Tensor nll_loss(const Flow::Output& out);
// The authors' anomaly score: mean over channels of z^2 -> (B).
Tensor mean_z2(const Tensor& z);

}  // namespace sanf::flows
