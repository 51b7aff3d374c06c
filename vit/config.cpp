// vit/config.cpp: named ViT presets, validation, and the __metadata__ round trip.
#include "vit/config.h"

#include <charconv>
#include <cmath>
#include <type_traits>

#include "core/error.h"

namespace sanf::vit {

namespace {

struct Preset {
  const char* name;
  int64_t dim, depth, heads;
};
constexpr Preset kPresets[] = {
    {"vit-tiny", 192, 12, 3}, {"vit-small", 384, 12, 6}, {"vit-base", 768, 12, 12}, {"vit-large", 1024, 24, 16}};

// Shortest text that reads back as the same double ("1e-06", "0.485").
std::string fmt(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}
std::string triple(const std::array<double, 3>& t) { return fmt(t[0]) + "," + fmt(t[1]) + "," + fmt(t[2]); }

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// The whole string must be the number; anything else is an error naming the key and the text.
template <typename T>
T parse_number(const std::string& text, const std::string& key, const std::string& source) {
  const std::string s = trim(text);
  T v{};
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  SANF_CHECK(r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty(), source, ": metadata '", key,
             "' is not a valid ", std::is_integral_v<T> ? "integer" : "number", ": '", text, "'");
  return v;
}

struct Reader {
  const std::map<std::string, std::string>& meta;
  const std::string& source;
  const std::string& get(const std::string& key) const {
    auto it = meta.find(key);
    SANF_CHECK(it != meta.end(), source, ": checkpoint metadata lacks '", key,
               "' (a ViT checkpoint records arch, image_size, patch_size, dim, depth, heads, mlp_ratio, qkv_bias, "
               "ln_eps, mean, std)");
    return it->second;
  }
  int64_t integer(const std::string& key) const { return parse_number<int64_t>(get(key), key, source); }
  double real(const std::string& key) const { return parse_number<double>(get(key), key, source); }
  bool boolean(const std::string& key) const {
    const std::string v = trim(get(key));
    if (v == "true" || v == "True" || v == "1") return true;
    if (v == "false" || v == "False" || v == "0") return false;
    SANF_FAIL(source, ": metadata '", key, "' must be true or false, got '", v, "'");
  }
  std::array<double, 3> three(const std::string& key) const {
    const std::string& v = get(key);
    std::array<double, 3> out{};
    size_t at = 0;
    for (int i = 0; i < 3; ++i) {
      size_t comma = v.find(',', at);
      SANF_CHECK((i < 2) == (comma != std::string::npos), source, ": metadata '", key,
                 "' must be three comma-separated numbers, got '", v, "'");
      out[size_t(i)] =
          parse_number<double>(v.substr(at, comma == std::string::npos ? std::string::npos : comma - at), key, source);
      at = comma + 1;
    }
    return out;
  }
};

}  // namespace

void ViTConfig::validate(const std::string& source) const {
  auto positive = [&](int64_t v, const char* key) {
    SANF_CHECK(v > 0, source, ": '", key, "' must be positive, got ", v, " (", name, ")");
  };
  positive(image_size, "image_size");
  positive(patch_size, "patch_size");
  positive(in_chans, "in_chans");
  positive(dim, "dim");
  positive(depth, "depth");
  positive(heads, "heads");
  SANF_CHECK(image_size % patch_size == 0, source, ": 'image_size' ", image_size, " is not divisible by 'patch_size' ",
             patch_size, " (", name, ")");
  SANF_CHECK(dim % heads == 0, source, ": 'dim' ", dim, " is not divisible by 'heads' ", heads, " (", name, ")");
  // (bounded before the cast to an integer width, which would overflow for absurd ratios)
  SANF_CHECK(std::isfinite(mlp_ratio) && mlp_ratio > 0 && mlp_ratio <= 1024 && mlp_hidden() > 0, source,
             ": 'mlp_ratio' ", mlp_ratio, " gives no MLP width for dim ", dim, " (", name, ")");
  SANF_CHECK(std::isfinite(ln_eps) && ln_eps > 0, source, ": 'ln_eps' must be positive, got ", ln_eps, " (", name, ")");
  for (int c = 0; c < 3; ++c) {
    SANF_CHECK(std::isfinite(mean[size_t(c)]), source, ": 'mean' must be finite, got ", triple(mean));
    SANF_CHECK(std::isfinite(std[size_t(c)]) && std[size_t(c)] > 0, source, ": 'std' must be positive, got ",
               triple(std));
  }
}

std::vector<std::string> vit_config_names() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.push_back(p.name);
  return names;
}

ViTConfig vit_config(const std::string& name) {
  for (const Preset& p : kPresets) {
    if (name != p.name) continue;
    ViTConfig c;  // patch 16, image 224, mlp_ratio 4, qkv bias, eps 1e-6, mean/std 0.5 by default
    c.name = p.name;
    c.dim = p.dim;
    c.depth = p.depth;
    c.heads = p.heads;
    return c;
  }
  std::string known;
  for (const std::string& n : vit_config_names()) known += (known.empty() ? "" : ", ") + n;
  SANF_FAIL("unknown ViT architecture '", name, "'; known: ", known);
}

std::map<std::string, std::string> config_to_metadata(const ViTConfig& c) {
  return {{"arch", c.name},
          {"image_size", std::to_string(c.image_size)},
          {"patch_size", std::to_string(c.patch_size)},
          {"in_chans", std::to_string(c.in_chans)},
          {"dim", std::to_string(c.dim)},
          {"depth", std::to_string(c.depth)},
          {"heads", std::to_string(c.heads)},
          {"mlp_ratio", fmt(c.mlp_ratio)},
          {"qkv_bias", c.qkv_bias ? "true" : "false"},
          {"ln_eps", fmt(c.ln_eps)},
          {"mean", triple(c.mean)},
          {"std", triple(c.std)}};
}

ViTConfig config_from_metadata(const std::map<std::string, std::string>& meta, const std::string& source) {
  Reader r{meta, source};
  ViTConfig c;
  c.name = r.get("arch");
  c.image_size = r.integer("image_size");
  c.patch_size = r.integer("patch_size");
  c.in_chans = meta.count("in_chans") ? r.integer("in_chans") : 3;
  c.dim = r.integer("dim");
  c.depth = r.integer("depth");
  c.heads = r.integer("heads");
  c.mlp_ratio = r.real("mlp_ratio");
  c.qkv_bias = r.boolean("qkv_bias");
  c.ln_eps = r.real("ln_eps");
  c.mean = r.three("mean");
  c.std = r.three("std");
  c.validate(source);
  return c;
}

}  // namespace sanf::vit
