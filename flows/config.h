// flows/config.h: FlowConfig, the architecture of a SANF flow, and its string-map form for checkpoints.
//
// A flow maps the class token y (D numbers) to z (D numbers), conditioned on N patch tokens (N x D).
// The config is everything needed to rebuild the modules before loading weights into them; checkpoints
// carry it in the safetensors `__metadata__` under "flow.*" keys (docs/METHOD.md §2: a file describes itself).
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace sanf::flows {

struct FlowConfig {
  int64_t dim = 768;      // D: width of y and of each patch token; even, d = D/2 is a coupling half
  int64_t tokens = 196;   // N: patch tokens per sample as given to forward() (a G x G grid if pool_grid > 0)
  int64_t layers = 4;     // K: number of FLLs
  int64_t hidden = 0;     // H: CAFF hidden width; 0 means H = D (docs/METHOD.md §3 default)
  double alpha = 3.0;     // soft clamp c(s) = (2 alpha / pi) atan(s / alpha)
  int64_t heads = 4;      // class-attention heads; must divide d = D/2
  bool qkv_bias = true;   // biases bq, bk, bv of the attention projections
  bool no_caff = false;   // the paper's ablation: attention over m = [h] only, patch tokens unused
  int64_t pool_grid = 0;  // g > 0: average-pool the G x G token grid (N = G*G) to g x g first; 0: none
  uint64_t seed = 0;      // draws the permutations and the initial weights

  int64_t half() const { return dim / 2; }                                                // d
  int64_t hidden_width() const { return hidden > 0 ? hidden : dim; }                      // H, resolved
  int64_t flow_tokens() const { return pool_grid > 0 ? pool_grid * pool_grid : tokens; }  // tokens CAFF sees

  // Throws sanf::Error "<where>: flow.heads (3) must ..." naming the field by its metadata key.
  void validate(const std::string& where = "flow config") const;

  // "flow.dim" -> "768", ...; hidden is written resolved. from_metadata requires every key, parses each
  // strictly (the whole string must be a number / "true" / "false") and validates; errors name the key.
  std::map<std::string, std::string> to_metadata() const;
  static FlowConfig from_metadata(const std::map<std::string, std::string>& meta, const std::string& source);

  // Equal architecture (everything but the seed, with hidden resolved).
  bool same_architecture(const FlowConfig& o) const;
};

}  // namespace sanf::flows
