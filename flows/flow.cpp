// flows/flow.cpp: the stack of FLLs, forward and inverse, and the NLL and scores (math in flows/flow.h).
#include "flows/flow.h"

#include <cmath>

namespace sanf::flows {

Flow::Flow(const FlowConfig& cfg, DType dtype, Device device) : cfg_(cfg) {
  cfg_.validate();
  Generator gen(cfg_.seed);
  nn::InitOptions init{&gen, dtype, device};
  for (int64_t k = 0; k < cfg_.layers; ++k) {
    layers_.push_back(
        std::make_unique<FLL>(cfg_.dim, cfg_.hidden_width(), cfg_.heads, cfg_.qkv_bias, cfg_.alpha, init));
    register_module("layers." + std::to_string(k), *layers_.back());
  }
}

Tensor Flow::prepare_tokens(const Tensor& y, const Tensor& P, const char* op) const {
  SANF_CHECK(y.defined() && y.dim() == 2 && y.size(1) == cfg_.dim, "[", op, "] y must be (B, ", cfg_.dim, "), got ",
             y.defined() ? shape_str(y.shape()) : "undefined");
  if (!P.defined()) {
    SANF_CHECK(cfg_.no_caff, "[", op, "] patch tokens P (B, ", cfg_.tokens, ", ", cfg_.dim,
               ") are required (only a no_caff flow runs without them)");
    return Tensor();
  }
  SANF_CHECK(P.dim() == 3 && P.size(0) == y.size(0) && P.size(1) == cfg_.tokens && P.size(2) == cfg_.dim, "[", op,
             "] patch tokens P must be (", y.size(0), ", ", cfg_.tokens, ", ", cfg_.dim, ") to go with y ",
             shape_str(y.shape()), ", got ", shape_str(P.shape()));
  SANF_CHECK(P.dtype() == y.dtype() && P.device() == y.device(), "[", op, "] P is ", P.info(), " but y is ", y.info());
  if (cfg_.no_caff) return Tensor();  // the ablation: CAFF attends over [h] only
  if (cfg_.pool_grid == 0) return P;
  // P: (B, G*G, D) -> (B, g*g, D), the grid averaged over adaptive cells.
  const auto G = int64_t(std::llround(std::sqrt(double(cfg_.tokens))));
  return adaptive_avg_pool_tokens(P, G, G, cfg_.pool_grid, cfg_.pool_grid);
}

Flow::Output Flow::forward(const Tensor& y, const Tensor& P) {
  Tensor tokens = prepare_tokens(y, P, "flow forward");
  Tensor x = y, logdet;
  for (auto& layer : layers_) {
    FLL::Output o = layer->forward(x, tokens);
    x = o.y;
    tokens = o.tokens;  // channels now in this layer's order, as the next layer expects
    logdet = logdet.defined() ? logdet + o.logdet : o.logdet;
  }
  return {x, logdet};
}

Tensor Flow::inverse(const Tensor& z, const Tensor& P) {
  // Layer k needs the tokens in its input order: replay the permutations forward first (tokens only).
  std::vector<Tensor> tokens_in{prepare_tokens(z, P, "flow inverse")};
  for (size_t k = 0; k + 1 < layers_.size(); ++k)
    tokens_in.push_back(tokens_in[k].defined() ? layers_[k]->permute_channels(tokens_in[k]) : Tensor());
  Tensor x = z;
  for (size_t k = layers_.size(); k-- > 0;) x = layers_[k]->inverse(x, tokens_in[k]);
  return x;
}

void Flow::record_attention(bool on) {
  for (auto& layer : layers_) {
    layer->caff1.attn.record = layer->caff2.attn.record = on;
    if (!on) layer->caff1.attn.recorded = layer->caff2.attn.recorded = Tensor();
  }
}

Tensor Flow::patch_attention() const {
  SANF_CHECK(!cfg_.no_caff, "[flow attention] a no-CAFF flow attends to no patch token: it has no attention map");
  Tensor total;
  for (const auto& layer : layers_)
    for (const ClassAttention* attn : {&layer->caff1.attn, &layer->caff2.attn}) {
      SANF_CHECK(attn->recorded.defined(), "[flow attention] no attention recorded: call record_attention(true) "
                 "before forward");
      const Tensor& A = attn->recorded;                          // (B, N'+1, heads)
      Tensor on_patches = mean(narrow(A, 1, 1, A.size(1) - 1), {2});  // (B, N')
      total = total.defined() ? total + on_patches : on_patches;
    }
  return sanf::to(total * (1.0 / double(2 * layers_.size())), DType::F32);
}

Tensor nll(const Flow::Output& out) { return sum(square(out.z), {1}) * 0.5 - out.logdet; }

Tensor nll_loss(const Flow::Output& out) { return mean(nll(out)) * (1.0 / double(out.z.size(1))); }

Tensor mean_z2(const Tensor& z) { return mean(square(z), {1}); }

}  // namespace sanf::flows
