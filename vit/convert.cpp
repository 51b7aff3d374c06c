// vit/convert.cpp: reading a ViT's architecture off its tensors, checking every tensor against it, and
// writing the canonical checkpoint (see vit/convert.h for the format and the sources).
#include "vit/convert.h"

#include <cmath>
#include <set>

#include "core/safetensors.h"
#include "vit/config.h"
#include "vit/convert_names.h"

namespace sanf::vit {

using namespace convert_detail;

namespace {

const char* const kBlockTensors[] = {"norm1.weight",     "norm1.bias",     "attn.qkv.weight", "attn.qkv.bias",
                                     "attn.proj.weight", "attn.proj.bias", "norm2.weight",    "norm2.bias",
                                     "mlp.fc1.weight",   "mlp.fc1.bias",   "mlp.fc2.weight",  "mlp.fc2.bias"};

// The canonical tensors of an architecture and their shapes, in model order (the order of the output file).
std::vector<std::pair<std::string, Shape>> canonical_shapes(const ViTConfig& c) {
  const int64_t D = c.dim, H = c.mlp_hidden(), p = c.patch_size;
  std::vector<std::pair<std::string, Shape>> out = {{"cls_token", {1, 1, D}},
                                                    {"pos_embed", {1, 1 + c.num_patches(), D}},
                                                    {"patch_embed.proj.weight", {D, c.in_chans, p, p}},
                                                    {"patch_embed.proj.bias", {D}}};
  const Shape block_shapes[] = {{D}, {D}, {3 * D, D}, {3 * D}, {D, D}, {D}, {D}, {D}, {H, D}, {H}, {D, H}, {D}};
  for (int64_t i = 0; i < c.depth; ++i)
    for (size_t k = 0; k < std::size(kBlockTensors); ++k) {
      if (!c.qkv_bias && std::string(kBlockTensors[k]) == "attn.qkv.bias") continue;
      out.push_back({"blocks." + std::to_string(i) + "." + kBlockTensors[k], block_shapes[k]});
    }
  out.push_back({"norm.weight", {D}});
  out.push_back({"norm.bias", {D}});
  return out;
}

// The usual number of heads for a width: ViT-Ti, S, B, L, H (timm, Hugging Face, torchvision alike).
int64_t heads_for_width(int64_t D) {
  switch (D) {
    case 192:
      return 3;
    case 384:
      return 6;
    case 768:
      return 12;
    case 1024:
      return 16;
    case 1280:
      return 16;
    default:
      return 0;
  }
}

// Looks tensors up by canonical name; messages name the file, the canonical name and the source name(s).
struct Lookup {
  const Renamed& r;
  const Naming& n;
  const std::string& path;

  std::string label(const std::string& canonical) const {
    auto it = r.origin.find(canonical);
    const std::string src = it != r.origin.end() ? it->second : source_name(n, canonical);
    return src == "'" + canonical + "'" ? src : "'" + canonical + "' (" + n.source + " name " + src + ")";
  }
  const Tensor& need(const std::string& canonical) const {
    auto it = r.tensors.find(canonical);
    SANF_CHECK(it != r.tensors.end(), path, ": missing tensor ", label(canonical));
    return it->second;
  }
  void check_shape(const std::string& canonical, bool ok, const std::string& expected) const {
    SANF_CHECK(ok, path, ": tensor ", label(canonical), " has shape ", shape_str(need(canonical).shape()),
               ", expected ", expected);
  }
};

// Everything the tensors say: width, depth, patch, channels, image size, MLP width, qkv bias. (Not heads.)
ViTConfig infer(const Lookup& L) {
  ViTConfig c;
  const Tensor& cls = L.need("cls_token");
  L.check_shape("cls_token", cls.dim() == 3 && cls.size(0) == 1 && cls.size(1) == 1 && cls.size(2) > 0, "(1, 1, D)");
  const int64_t D = c.dim = cls.size(2);

  const Tensor& w = L.need("patch_embed.proj.weight");
  L.check_shape("patch_embed.proj.weight",
                w.dim() == 4 && w.size(0) == D && w.size(1) > 0 && w.size(2) > 0 && w.size(2) == w.size(3),
                cat("(", D, ", C, p, p): D from cls_token, square patches"));
  c.in_chans = w.size(1);
  c.patch_size = w.size(2);

  // pos_embed holds the class position and N = g * g patch positions: the image is g patches a side.
  const Tensor& pos = L.need("pos_embed");
  L.check_shape("pos_embed", pos.dim() == 3 && pos.size(0) == 1 && pos.size(1) >= 2 && pos.size(2) == D,
                cat("(1, 1 + N, ", D, ")"));
  const int64_t N = pos.size(1) - 1, g = std::llround(std::sqrt(double(N)));
  SANF_CHECK(g * g == N, L.path, ": tensor ", L.label("pos_embed"), " of shape ", shape_str(pos.shape()), " holds ", N,
             " patch positions after the class position: not a square grid");
  c.image_size = g * c.patch_size;

  // Blocks 0 .. depth-1, every one present: a hole means a truncated or mis-merged checkpoint.
  std::set<int64_t> blocks;
  for (const auto& [name, t] : L.r.tensors) {
    int64_t i = 0;
    std::string suffix;
    if (parse_block_name(name, "blocks.", i, suffix)) blocks.insert(i);
  }
  SANF_CHECK(!blocks.empty(), L.path, ": no transformer blocks (no tensor like ",
             source_name(L.n, "blocks.0.norm1.weight"), ")");
  c.depth = *blocks.rbegin() + 1;
  for (int64_t i = 0; i < c.depth; ++i)
    SANF_CHECK(blocks.count(i), L.path, ": block ", i, " is missing: there are blocks up to ", c.depth - 1,
               " but no tensor named ", L.n.block, i, ".*", L.n.block == "blocks." ? "" : cat(" (blocks.", i, ".*)"));

  const Tensor& fc1 = L.need("blocks.0.mlp.fc1.weight");
  L.check_shape("blocks.0.mlp.fc1.weight", fc1.dim() == 2 && fc1.size(0) > 0 && fc1.size(1) == D, cat("(H, ", D, ")"));
  c.mlp_ratio = double(fc1.size(0)) / double(D);
  SANF_CHECK(c.mlp_hidden() == fc1.size(0), L.path, ": tensor ", L.label("blocks.0.mlp.fc1.weight"), ": MLP width ",
             fc1.size(0), " is not int(dim * mlp_ratio) for any ratio sanf can record");

  c.qkv_bias = false;  // present in any block means required in all (a missing one is then named below)
  for (int64_t i = 0; i < c.depth; ++i)
    c.qkv_bias = c.qkv_bias || L.r.tensors.count(cat("blocks.", i, ".attn.qkv.bias"));
  return c;
}

// A declared size (from the source's config file or --arch) must match what the tensors give.
void agree(const std::string& who, const char* field, int64_t declared, int64_t found, const std::string& path,
           const std::string& evidence) {
  SANF_CHECK(declared == found, who, ": ", field, " is ", declared, " but ", path, " has ", found, " (", evidence, ")");
}

std::array<double, 3> triple(const std::vector<double>& v, const char* what) {
  SANF_CHECK(v.size() == 3, "convert: ", what, " needs 3 values (R, G, B), got ", v.size());
  return {v[0], v[1], v[2]};
}

}  // namespace

std::pair<StateDict, Metadata> convert_state_dict(StateDict in, const ConvertOptions& opts,
                                                  const std::string& source_path, const SourceConfig& config) {
  const Naming& n = naming(opts.source);
  const Renamed r = rename_to_canonical(in, n, source_path);
  in.clear();  // the inputs are now held by `r` (or dropped)
  const Lookup L{r, n, source_path};
  ViTConfig c = infer(L);
  const int64_t hidden = c.mlp_hidden();
  const std::string fc1_label = L.label("blocks.0.mlp.fc1.weight"), patch_label = L.label("patch_embed.proj.weight");
  const std::string depth_evidence = cat("blocks 0..", c.depth - 1);

  // Heads: the tensors cannot tell, so the options, then the config file, then the arch name, then the table.
  const bool named = !opts.arch.empty() && opts.arch != "custom";
  const ViTConfig preset = named ? vit_config(opts.arch) : ViTConfig{};
  std::string heads_from = "the width table";
  SANF_CHECK(opts.heads >= 0, "convert: heads must be positive (0 = infer), got ", opts.heads);
  if (opts.heads > 0) {
    c.heads = opts.heads, heads_from = "the heads option";
  } else if (config.heads) {
    c.heads = *config.heads, heads_from = config.path;
  } else if (named) {
    c.heads = preset.heads, heads_from = "the arch";
  } else {
    c.heads = heads_for_width(c.dim);
    SANF_CHECK(c.heads > 0, source_path, ": the number of attention heads of a width-", c.dim,
               " ViT cannot be read off its tensors (and is not one of the usual widths 192, 384, 768, 1024, "
               "1280): give it (--heads)");
  }

  if (named) {  // every size the arch names must be what the tensors say (patch and image size may differ)
    const std::string who = "--arch " + opts.arch;
    agree(who, "dim", preset.dim, c.dim, source_path, L.label("cls_token"));
    agree(who, "depth", preset.depth, c.depth, source_path, depth_evidence);
    agree(who, "heads", preset.heads, c.heads, source_path, heads_from);
    agree(who, "MLP width", preset.mlp_hidden(), hidden, source_path, fc1_label);
    agree(who, "in_chans", preset.in_chans, c.in_chans, source_path, patch_label);
    c.name = opts.arch;
  } else {
    c.name = "custom";
    for (const std::string& name : vit_config_names()) {
      const ViTConfig p = vit_config(name);
      if (p.dim == c.dim && p.depth == c.depth && p.heads == c.heads && p.mlp_hidden() == hidden &&
          p.in_chans == c.in_chans)
        c.name = name;
    }
  }

  if (!config.path.empty()) {  // what the config file declares must match too
    auto declared = [&](const char* key, const std::optional<int64_t>& v, int64_t found, const std::string& evidence) {
      if (v) agree(config.path, key, *v, found, source_path, evidence);
    };
    declared("hidden_size", config.dim, c.dim, L.label("cls_token"));
    declared("num_hidden_layers", config.depth, c.depth, depth_evidence);
    declared("intermediate_size", config.mlp_hidden, hidden, fc1_label);
    declared("image_size", config.image_size, c.image_size, L.label("pos_embed") + " and the patch size");
    declared("patch_size", config.patch_size, c.patch_size, patch_label);
    declared("num_channels", config.in_chans, c.in_chans, patch_label);
    SANF_CHECK(!config.qkv_bias || *config.qkv_bias == c.qkv_bias, config.path, ": qkv_bias is ",
               *config.qkv_bias ? "true" : "false", " but ", source_path, c.qkv_bias ? " has" : " has no",
               " qkv biases");
  }

  // Preprocessing and eps: options, then the config files, then the source's default.
  SANF_CHECK(opts.ln_eps >= 0, "convert: ln_eps must be positive (0 = default), got ", opts.ln_eps);
  const double default_eps = opts.source == "hf" ? 1e-12 : 1e-6;  // transformers' ViTConfig default; timm, tv
  c.ln_eps = opts.ln_eps > 0 ? opts.ln_eps : config.ln_eps.value_or(default_eps);
  const std::vector<double> imagenet_mean = {0.485, 0.456, 0.406}, imagenet_std = {0.229, 0.224, 0.225};
  const bool tv = opts.source == "torchvision";  // torchvision's ViTs are ImageNet-1k models
  // Each of mean and std: the option, else the config file, else the source's default; and where it came from.
  const std::string config_from = config.mean_std_from.empty() ? config.path : config.mean_std_from;
  const std::string fallback =
      tv ? "default for torchvision: ImageNet's, as torchvision publishes no config"
         : cat("default for ", opts.source, ": 0.5 per channel, the ImageNet-21k and augreg ViTs', as no ",
               opts.source == "hf" ? "preprocessor_config.json" : "config.json with pretrained_cfg",
               " is beside the checkpoint; ImageNet-1k models such as DeiT need --mean/--std");
  auto pick = [&](const std::vector<double>& option, const std::vector<double>& from_config, const char* flag,
                  const std::vector<double>& default_value, std::string& from) -> std::vector<double> {
    if (!option.empty()) {
      from = cat("from --", flag);
      return option;
    }
    if (!from_config.empty()) {
      from = "from " + config_from;
      return from_config;
    }
    from = fallback;
    return default_value;
  };
  std::string mean_from, std_from;
  c.mean = triple(pick(opts.mean, config.mean, "mean", tv ? imagenet_mean : std::vector<double>{0.5, 0.5, 0.5},
                       mean_from),
                  "mean");
  c.std = triple(pick(opts.std, config.std, "std", tv ? imagenet_std : std::vector<double>{0.5, 0.5, 0.5}, std_from),
                 "std");
  std::string norm_source = "mean " + mean_from + "; std " + std_from;
  if (mean_from == std_from) norm_source = mean_from;
  if (!opts.mean.empty() && !opts.std.empty()) norm_source = "from --mean/--std";
  c.validate(source_path);

  // Every tensor against the architecture; the state dict must be exactly the canonical set.
  const auto shapes = canonical_shapes(c);
  StateDict out;
  for (const auto& [name, shape] : shapes) {
    const Tensor& t = L.need(name);
    L.check_shape(name, t.shape() == shape, shape_str(shape));
    out[name] = t;
  }
  for (const auto& [name, t] : r.tensors)
    SANF_CHECK(out.count(name), source_path, ": unexpected tensor ", L.label(name), " for a ViT of depth ", c.depth,
               c.qkv_bias ? "" : " without qkv bias");

  Metadata meta = config_to_metadata(c);
  meta["format"] = "sanf-vit";
  meta["source"] = opts.source;
  meta["norm_source"] = norm_source;
  return {std::move(out), std::move(meta)};
}

void convert_checkpoint(const std::string& in, const std::string& out, const ConvertOptions& opts) {
  naming(opts.source);  // an unknown source fails before any file is read
  StateDict sd;
  {
    const SafetensorsFile f = SafetensorsFile::open(in);  // tensors keep the mapping alive after `f` goes
    for (const TensorEntry& e : f.entries()) sd[e.name] = f.get(e.name);
  }
  auto [tensors, meta] = convert_state_dict(std::move(sd), opts, in, read_source_config(opts.source, in));
  std::vector<std::pair<std::string, Tensor>> ordered;
  for (const auto& [name, shape] : canonical_shapes(config_from_metadata(meta, in)))
    ordered.push_back({name, tensors.at(name)});
  save_safetensors(out, ordered, meta);  // temporary file + rename: no output at all unless this succeeds
}

}  // namespace sanf::vit
