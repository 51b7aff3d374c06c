// tests/vit/convert_helpers.h: shared by the conversion tests: fixture paths, a random timm-named state
// dict, and a check that an error names what it should.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/safetensors.h"
#include "vit/config.h"
#include "vit/convert.h"

using namespace sanf;
using namespace sanf::vit;

namespace convert_test {

inline const std::string kDir = std::string(SANF_FIXTURES_DIR) + "/vit_convert";
inline const std::string kTorchvision = kDir + "/torchvision.safetensors", kTimm = kDir + "/timm.safetensors",
                         kHf = kDir + "/hf/model.safetensors";

inline std::string temp_path(const std::string& stem) {
  return "/tmp/sanf_test_convert_" + stem + "_" + std::to_string(::getpid()) + ".safetensors";
}

inline StateDict load(const std::string& path) {
  SafetensorsFile f = SafetensorsFile::open(path);
  StateDict sd;
  for (const TensorEntry& e : f.entries()) sd[e.name] = f.get(e.name);
  return sd;
}

inline ConvertOptions with(const std::string& source, int64_t heads = 0) {
  ConvertOptions o;
  o.source = source;
  o.heads = heads;
  return o;
}

// A random canonical (timm-named) f32 state dict; block tensors of `skip_block` are left out.
inline StateDict make_timm(int64_t D, int64_t depth, int64_t hidden, int64_t p, int64_t grid, bool qkv_bias = true,
                           int64_t skip_block = -1) {
  Generator gen(7);
  StateDict sd;
  auto put = [&](const std::string& name, const Shape& s) { sd[name] = randn(s, DType::F32, Device::CPU, &gen); };
  put("cls_token", {1, 1, D});
  put("pos_embed", {1, 1 + grid * grid, D});
  put("patch_embed.proj.weight", {D, 3, p, p});
  put("patch_embed.proj.bias", {D});
  for (int64_t i = 0; i < depth; ++i) {
    if (i == skip_block) continue;
    const std::string b = "blocks." + std::to_string(i) + ".";
    for (const char* ln : {"norm1", "norm2"}) put(b + ln + ".weight", {D}), put(b + ln + ".bias", {D});
    put(b + "attn.qkv.weight", {3 * D, D});
    if (qkv_bias) put(b + "attn.qkv.bias", {3 * D});
    put(b + "attn.proj.weight", {D, D}), put(b + "attn.proj.bias", {D});
    put(b + "mlp.fc1.weight", {hidden, D}), put(b + "mlp.fc1.bias", {hidden});
    put(b + "mlp.fc2.weight", {D, hidden}), put(b + "mlp.fc2.bias", {D});
  }
  put("norm.weight", {D});
  put("norm.bias", {D});
  return sd;
}

// `f` must throw a sanf::Error whose message contains every fragment (the file and the tensor, at least).
template <typename F>
void expect_error(F&& f, const std::vector<std::string>& fragments) {
  std::string msg;
  try {
    f();
  } catch (const Error& e) {
    msg = e.what();
  }
  CAPTURE(msg);
  REQUIRE_MESSAGE(!msg.empty(), "no error thrown");
  for (const std::string& frag : fragments) {
    const std::string missing = "the message lacks: " + frag;
    CHECK_MESSAGE(msg.find(frag) != std::string::npos, missing);
  }
}

inline const std::string kSrc = "ckpt.safetensors";  // the source path in-memory conversions name

}  // namespace convert_test

using namespace convert_test;
