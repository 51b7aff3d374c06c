// vit/convert_config.cpp: what the config files next to a checkpoint say about it.
//
// Hugging Face checkpoints come as a folder: model.safetensors, config.json (ViTConfig) and
// preprocessor_config.json (the image processor's mean/std). timm checkpoints on the Hub come the same way,
// with a config.json whose pretrained_cfg holds the normalisation. The files are optional; when present they
// are trusted for what the tensors cannot say (heads, LayerNorm eps, mean/std) and checked for the rest.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "vit/convert.h"

namespace sanf::vit {

namespace {

using nlohmann::json;

// The JSON object in `p`, or nothing if there is no such file.
std::optional<json> load_json(const std::filesystem::path& p) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(p, ec)) return std::nullopt;
  std::ifstream f(p);
  SANF_CHECK(f.good(), p.string(), ": cannot open");
  json j = json::parse(f, nullptr, /*allow_exceptions=*/false);
  SANF_CHECK(!j.is_discarded() && j.is_object(), p.string(), ": not a JSON object");
  return j;
}

bool present(const json& j, const char* key) { return j.contains(key) && !j[key].is_null(); }

std::optional<int64_t> get_int(const json& j, const char* key, const std::string& path) {
  if (!present(j, key)) return std::nullopt;
  const json& v = j[key];
  // ViTConfig allows image_size and patch_size as [h, w]; sanf's ViT is square, so only h == w is accepted.
  if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[0] == v[1]) return v[0].get<int64_t>();
  SANF_CHECK(v.is_number_integer(), path, ": '", key, "' must be an integer (or a square [h, w]), got ", v.dump());
  return v.get<int64_t>();
}

std::vector<double> get_triple(const json& j, const char* key, const std::string& path) {
  if (!present(j, key)) return {};
  const json& v = j[key];
  bool ok = v.is_array() && v.size() == 3;
  for (size_t i = 0; ok && i < 3; ++i) ok = v[i].is_number();
  SANF_CHECK(ok, path, ": '", key, "' must be three numbers (one per RGB channel), got ", v.dump());
  return {v[0].get<double>(), v[1].get<double>(), v[2].get<double>()};
}

void read_hf(const std::filesystem::path& dir, SourceConfig& c) {
  if (auto j = load_json(dir / "config.json")) {
    c.path = (dir / "config.json").string();
    c.dim = get_int(*j, "hidden_size", c.path);
    c.depth = get_int(*j, "num_hidden_layers", c.path);
    c.heads = get_int(*j, "num_attention_heads", c.path);
    c.mlp_hidden = get_int(*j, "intermediate_size", c.path);
    c.image_size = get_int(*j, "image_size", c.path);
    c.patch_size = get_int(*j, "patch_size", c.path);
    c.in_chans = get_int(*j, "num_channels", c.path);
    if (present(*j, "qkv_bias")) {
      SANF_CHECK((*j)["qkv_bias"].is_boolean(), c.path, ": 'qkv_bias' must be true or false");
      c.qkv_bias = (*j)["qkv_bias"].get<bool>();
    }
    if (present(*j, "layer_norm_eps")) {
      const json& e = (*j)["layer_norm_eps"];
      SANF_CHECK(e.is_number() && e.get<double>() > 0, c.path, ": 'layer_norm_eps' must be a positive number, got ",
                 e.dump());
      c.ln_eps = e.get<double>();
    }
    // transformers' "gelu" is the exact erf form, which is what sanf's ViT computes; "gelu_new" & co. are not.
    if (present(*j, "hidden_act")) {
      const json& a = (*j)["hidden_act"];
      SANF_CHECK(a.is_string() && a.get<std::string>() == "gelu", c.path, ": 'hidden_act' is ", a.dump(),
                 "; sanf's ViT computes the exact GELU (Hugging Face's \"gelu\")");
    }
  }
  const std::filesystem::path pre = dir / "preprocessor_config.json";
  if (auto j = load_json(pre)) {
    c.mean = get_triple(*j, "image_mean", pre.string());
    c.std = get_triple(*j, "image_std", pre.string());
    c.mean_std_from = pre.string();
  }
}

void read_timm(const std::filesystem::path& dir, SourceConfig& c) {
  const std::filesystem::path p = dir / "config.json";
  auto j = load_json(p);
  if (!j || !present(*j, "pretrained_cfg")) return;  // not a timm Hub config
  const json& cfg = (*j)["pretrained_cfg"];
  SANF_CHECK(cfg.is_object(), p.string(), ": 'pretrained_cfg' is not an object");
  c.path = p.string();
  c.mean = get_triple(cfg, "mean", c.path);
  c.std = get_triple(cfg, "std", c.path);
  c.mean_std_from = c.path + " pretrained_cfg";
}

}  // namespace

SourceConfig read_source_config(const std::string& source, const std::string& checkpoint_path) {
  SourceConfig c;
  const std::filesystem::path dir = std::filesystem::path(checkpoint_path).parent_path();
  if (source == "hf") read_hf(dir, c);
  if (source == "timm") read_timm(dir, c);
  // torchvision publishes no config files: its ViTs are fully described by the tensors and eps 1e-6.
  return c;
}

}  // namespace sanf::vit
