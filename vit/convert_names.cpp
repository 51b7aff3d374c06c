// vit/convert_names.cpp: the three sources' naming tables, and renaming a state dict to canonical names.
//
// The tables were checked against the libraries themselves: torchvision 0.14's VisionTransformer
// state_dict() (tests/fixtures/make_convert_fixture.py builds one), transformers' ViTModel
// (modeling_vit.py: ViTEmbeddings, ViTLayer, ViTSelfAttention's separate query/key/value Linears) and
// timm's VisionTransformer, whose names are the canonical ones.
#include "vit/convert_names.h"

#include "autograd/ops.h"
#include "core/safetensors.h"

namespace sanf::vit::convert_detail {

namespace {

// The .weight and .bias of one module.
std::vector<Rule> wb(const std::string& canonical, const std::string& from) {
  return {{canonical + ".weight", {from + ".weight"}}, {canonical + ".bias", {from + ".bias"}}};
}
void append(std::vector<Rule>& to, const std::vector<Rule>& rules) { to.insert(to.end(), rules.begin(), rules.end()); }

Naming timm_naming() {
  Naming n{"timm", {"module.", "model."}, {"head.", "pre_logits."}, "blocks.", {}, {}};
  for (const char* m : {"patch_embed.proj", "norm"}) append(n.global, wb(m, m));
  n.global.push_back({"cls_token", {"cls_token"}});
  n.global.push_back({"pos_embed", {"pos_embed"}});
  for (const char* m : {"norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"}) append(n.per_block, wb(m, m));
  return n;
}

Naming hf_naming() {
  // ViTForImageClassification nests ViTModel under "vit." and adds "classifier"; ViTModel has a "pooler"
  // (dense + tanh on the class token, trained for next-sentence-style pretraining, not the class token
  // itself); mask_token is only used by ViTForMaskedImageModeling.
  Naming n{"hf", {"vit."}, {"pooler.", "classifier.", "embeddings.mask_token"}, "encoder.layer.", {}, {}};
  n.global.push_back({"cls_token", {"embeddings.cls_token"}});
  n.global.push_back({"pos_embed", {"embeddings.position_embeddings"}});
  append(n.global, wb("patch_embed.proj", "embeddings.patch_embeddings.projection"));
  append(n.global, wb("norm", "layernorm"));
  append(n.per_block, wb("norm1", "layernorm_before"));
  for (const char* p : {"weight", "bias"}) {
    const std::string s = std::string(".") + p;
    n.per_block.push_back(
        {"attn.qkv" + s,
         {"attention.attention.query" + s, "attention.attention.key" + s, "attention.attention.value" + s}});
  }
  append(n.per_block, wb("attn.proj", "attention.output.dense"));
  append(n.per_block, wb("norm2", "layernorm_after"));
  append(n.per_block, wb("mlp.fc1", "intermediate.dense"));
  append(n.per_block, wb("mlp.fc2", "output.dense"));
  return n;
}

Naming torchvision_naming() {
  Naming n{"torchvision", {}, {"heads."}, "encoder.layers.encoder_layer_", {}, {}};
  n.global.push_back({"cls_token", {"class_token"}});
  n.global.push_back({"pos_embed", {"encoder.pos_embedding"}});
  append(n.global, wb("patch_embed.proj", "conv_proj"));
  append(n.global, wb("norm", "encoder.ln"));
  append(n.per_block, wb("norm1", "ln_1"));
  // nn.MultiheadAttention's packed projection: rows [0, D) are q, [D, 2D) k, [2D, 3D) v, as timm's qkv.
  n.per_block.push_back({"attn.qkv.weight", {"self_attention.in_proj_weight"}});
  n.per_block.push_back({"attn.qkv.bias", {"self_attention.in_proj_bias"}});
  append(n.per_block, wb("attn.proj", "self_attention.out_proj"));
  append(n.per_block, wb("norm2", "ln_2"));
  append(n.per_block, wb("mlp.fc1", "mlp.0"));  // MLPBlock = Linear, GELU, Dropout, Linear, Dropout
  append(n.per_block, wb("mlp.fc2", "mlp.3"));
  // The .pth files on download.pytorch.org predate torchvision 0.13's MLPBlock and say linear_1/linear_2
  // (torchvision renames them on load). Listed after mlp.0/mlp.3, so messages use the current names.
  append(n.per_block, wb("mlp.fc1", "mlp.linear_1"));
  append(n.per_block, wb("mlp.fc2", "mlp.linear_2"));
  return n;
}

// The rule and slot whose source name is `name`, or null.
const Rule* match(const std::vector<Rule>& rules, const std::string& name, size_t& slot) {
  for (const Rule& r : rules)
    for (size_t j = 0; j < r.from.size(); ++j)
      if (r.from[j] == name) {
        slot = j;
        return &r;
      }
  return nullptr;
}

std::string join(const std::vector<std::string>& parts) {
  std::string s;
  for (const std::string& p : parts) s += (s.empty() ? "'" : ", '") + p + "'";
  return s;
}

// The name without a wrapper prefix ("module.", "vit.").
std::string unwrap(const Naming& n, const std::string& name) {
  for (const std::string& p : n.strip)
    if (name.compare(0, p.size(), p) == 0) return name.substr(p.size());
  return name;
}

bool dropped(const Naming& n, const std::string& name) {
  for (const std::string& p : n.drop)
    if (name.compare(0, p.size(), p) == 0) return true;
  return false;
}

// The rule for an (unwrapped) source name, its slot, and the canonical name it gives; null if none.
const Rule* find_rule(const Naming& n, const std::string& name, size_t& slot, std::string& canonical) {
  if (const Rule* r = match(n.global, name, slot)) {
    canonical = r->canonical;
    return r;
  }
  int64_t i = 0;
  std::string suffix;
  if (!parse_block_name(name, n.block, i, suffix)) return nullptr;
  const Rule* r = match(n.per_block, suffix, slot);
  if (r) canonical = "blocks." + std::to_string(i) + "." + r->canonical;
  return r;
}

// Whether `n` maps or drops `key` (for the wrong-source hint).
bool recognises(const Naming& n, const std::string& key) {
  const std::string name = unwrap(n, key);
  size_t slot = 0;
  std::string canonical;
  return dropped(n, name) || find_rule(n, name, slot, canonical) != nullptr;
}

}  // namespace

const Naming& naming(const std::string& source) {
  static const Naming timm = timm_naming(), hf = hf_naming(), tv = torchvision_naming();
  if (source == "timm") return timm;
  if (source == "hf") return hf;
  if (source == "torchvision") return tv;
  SANF_FAIL("unknown checkpoint source '", source, "'; known: timm, hf, torchvision");
}

bool parse_block_name(const std::string& name, const std::string& prefix, int64_t& index, std::string& suffix) {
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  const size_t dot = name.find('.', prefix.size());
  const size_t len = dot == std::string::npos ? 0 : dot - prefix.size();
  // 1..6 digits, no leading zero: "blocks.01." is not block 1, and no index can overflow.
  if (len == 0 || len > 6 || (len > 1 && name[prefix.size()] == '0')) return false;
  index = 0;
  for (size_t i = prefix.size(); i < dot; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    index = index * 10 + (name[i] - '0');
  }
  suffix = name.substr(dot + 1);
  return true;
}

std::vector<std::string> source_names(const Naming& n, const std::string& canonical) {
  int64_t i = 0;
  std::string suffix;
  if (parse_block_name(canonical, "blocks.", i, suffix)) {
    for (const Rule& r : n.per_block)
      if (r.canonical == suffix) {
        std::vector<std::string> names;
        for (const std::string& f : r.from) names.push_back(n.block + std::to_string(i) + "." + f);
        return names;
      }
  } else {
    for (const Rule& r : n.global)
      if (r.canonical == canonical) return r.from;
  }
  return {canonical};
}

std::string source_name(const Naming& n, const std::string& canonical) { return join(source_names(n, canonical)); }

Renamed rename_to_canonical(const StateDict& in, const Naming& n, const std::string& path) {
  // pieces[canonical][slot] = (source name, tensor); a slot per source tensor of the rule.
  std::map<std::string, std::vector<std::pair<std::string, Tensor>>> pieces;
  for (const auto& [key, t] : in) {
    const std::string name = unwrap(n, key);
    if (dropped(n, name)) continue;
    // timm's global_pool='avg' models (MAE, BEiT-style fine-tunes) normalise the averaged patch tokens with
    // fc_norm and leave `norm` empty: their feature is not the class token this project's ViT returns.
    SANF_CHECK(!(n.source == "timm" && name.compare(0, 8, "fc_norm.") == 0), path, ": tensor '", key,
               "': this timm model pools by averaging through fc_norm, not by the class token after `norm`; "
               "sanf's ViT cannot reproduce it");
    size_t slot = 0;
    std::string canonical;
    const Rule* rule = find_rule(n, name, slot, canonical);
    if (!rule) {
      // The commonest mistake is the wrong source: say so when another naming knows the tensor.
      std::string hint = "extra tokens, layer scale and qk-norm are not supported";
      for (const char* other : {"timm", "hf", "torchvision"})
        if (other != n.source && recognises(naming(other), key)) hint = cat("it is a ", other, " name: wrong source?");
      SANF_FAIL(path, ": unexpected tensor '", key, "': not part of a ViT backbone in ", n.source, " naming (", hint,
                ")");
    }
    SANF_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F16 || t.dtype() == DType::BF16, path, ": tensor '", key,
               "' has dtype ", safetensors_dtype_name(t.dtype()), "; only F32, F16 and BF16 weights convert");
    auto& v = pieces[canonical];
    if (v.empty()) v.resize(rule->from.size());
    SANF_CHECK(!v[slot].second.defined(), path, ": tensors '", v[slot].first, "' and '", key, "' both give '",
               canonical, "'");
    v[slot] = {key, t};
  }

  Renamed out;
  for (auto& [canonical, v] : pieces) {
    std::vector<std::string> names;
    std::vector<Tensor> parts;
    size_t present = 0;
    while (!v[present].second.defined()) ++present;  // at least one piece was filled in
    for (size_t j = 0; j < v.size(); ++j) {
      const auto& [name, t] = v[j];
      // A stack with a piece missing (say value.weight): name the missing source tensor.
      SANF_CHECK(t.defined(), path, ": missing tensor '", source_names(n, canonical)[j], "' (stacked with '",
                 v[present].first, "' into ", canonical, ")");
      SANF_CHECK(v.size() == 1 || (t.dim() >= 1 && t.shape() == v[0].second.shape()), path, ": tensor '", name,
                 "' has shape ", shape_str(t.shape()), " but '", v[0].first, "' has ", shape_str(v[0].second.shape()),
                 "; they are stacked into ", canonical);
      names.push_back(name);
      parts.push_back(to(t, DType::F32));  // f16 / bf16 -> f32 is exact
    }
    out.tensors[canonical] = parts.size() == 1 ? parts[0] : concat(parts, 0);
    out.origin[canonical] = join(names);
  }
  return out;
}

}  // namespace sanf::vit::convert_detail
