// tests/vit/test_vit_model.cpp: configs and metadata, parameter names, timm initialisation and seeding,
// input validation, strict checkpoint loading and saving.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>

#include "core/safetensors.h"
#include "tests/testing/gradcheck.h"
#include "vit/vit.h"

using namespace sanf;
using vit::ViTConfig;

namespace {
std::string fixture(const std::string& name) { return std::string(SANF_FIXTURES_DIR) + "/" + name; }
std::string temp_path(const std::string& stem) {
  return "/tmp/sanf_test_vit_" + stem + "_" + std::to_string(::getpid()) + ".safetensors";
}

ViTConfig tiny(int64_t image = 8, int64_t patch = 4, int64_t dim = 8, int64_t depth = 1, int64_t heads = 2) {
  ViTConfig c;
  c.name = "vit-t";
  c.image_size = image, c.patch_size = patch, c.dim = dim, c.depth = depth, c.heads = heads;
  return c;
}

struct Stats {
  double mean, std, min, max;
};
Stats stats(const Tensor& t) {
  std::vector<double> v = t.to_vector();
  double s = 0, s2 = 0, lo = INFINITY, hi = -INFINITY;
  for (double x : v) s += x, s2 += x * x, lo = std::min(lo, x), hi = std::max(hi, x);
  const double m = s / double(v.size());
  return {m, std::sqrt(s2 / double(v.size()) - m * m), lo, hi};
}

// The fixture checkpoint's tensors (owned copies) and metadata, to be damaged and rewritten.
std::pair<std::vector<std::pair<std::string, Tensor>>, std::map<std::string, std::string>> fixture_contents() {
  SafetensorsFile f = SafetensorsFile::open(fixture("vit_tiny.safetensors"));
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const TensorEntry& e : f.entries()) tensors.push_back({e.name, clone(f.get(e.name))});
  return {tensors, f.metadata()};
}
}  // namespace

TEST_CASE("vit config: named presets, and unknown names list the known ones") {
  ViTConfig b = vit::vit_config("vit-base");
  CHECK(b.dim == 768);
  CHECK(b.depth == 12);
  CHECK(b.heads == 12);
  CHECK(b.patch_size == 16);
  CHECK(b.image_size == 224);
  CHECK(b.num_patches() == 196);
  CHECK(b.mlp_hidden() == 3072);
  CHECK(b.mean[1] == 0.5);
  CHECK(b.ln_eps == 1e-6);
  CHECK(vit::vit_config("vit-tiny").dim == 192);
  CHECK(vit::vit_config("vit-small").heads == 6);
  ViTConfig l = vit::vit_config("vit-large");
  CHECK((l.dim == 1024 && l.depth == 24 && l.heads == 16));
  CHECK_THROWS_WITH_AS(
      vit::vit_config("vit-huge"),
      doctest::Contains("unknown ViT architecture 'vit-huge'; known: vit-tiny, vit-small, vit-base, vit-large"), Error);
}

TEST_CASE("vit config: metadata round trip, and every bad value names the file and key") {
  ViTConfig c = vit::vit_config("vit-small");
  c.image_size = 384;
  c.qkv_bias = false;
  c.ln_eps = 1e-12;
  c.mean = {0.485, 0.456, 0.406};
  c.std = {0.229, 0.224, 0.225};
  auto meta = vit::config_to_metadata(c);
  CHECK(meta.at("ln_eps") == "1e-12");
  CHECK(meta.at("mean") == "0.485,0.456,0.406");
  CHECK(meta.at("qkv_bias") == "false");
  ViTConfig r = vit::config_from_metadata(meta, "m.safetensors");
  CHECK(r.name == "vit-small");
  CHECK((r.image_size == 384 && r.dim == 384 && r.depth == 12 && r.heads == 6 && !r.qkv_bias));
  CHECK(r.ln_eps == 1e-12);
  CHECK(r.mean == c.mean);
  CHECK(r.std == c.std);

  auto with = [&](const std::string& key, const std::string& value) {
    auto m = meta;
    if (value.empty())
      m.erase(key);
    else
      m[key] = value;
    return m;
  };
  CHECK(vit::config_from_metadata(with("in_chans", ""), "m").in_chans == 3);  // the one optional key
  CHECK(vit::config_from_metadata(with("mean", " 0.5, 0.5 ,0.5"), "m").mean[2] == 0.5);
  CHECK(vit::config_from_metadata(with("qkv_bias", "True"), "m").qkv_bias);
  const std::pair<std::pair<std::string, std::string>, std::string> bad[] = {
      {{"ln_eps", ""}, "m.safetensors: checkpoint metadata lacks 'ln_eps'"},
      {{"arch", ""}, "m.safetensors: checkpoint metadata lacks 'arch'"},
      {{"dim", "38x"}, "m.safetensors: metadata 'dim' is not a valid integer: '38x'"},
      {{"depth", "1.5"}, "metadata 'depth' is not a valid integer: '1.5'"},
      {{"mlp_ratio", "four"}, "metadata 'mlp_ratio' is not a valid number: 'four'"},
      {{"qkv_bias", "yes"}, "metadata 'qkv_bias' must be true or false, got 'yes'"},
      {{"mean", "0.5,0.5"}, "metadata 'mean' must be three comma-separated numbers, got '0.5,0.5'"},
      {{"std", "0.5,0.5,0.5,0.5"}, "metadata 'std' must be three comma-separated numbers"},
      {{"std", "0.5,0,0.5"}, "m.safetensors: 'std' must be positive, got 0.5,0,0.5"},
      {{"heads", "7"}, "m.safetensors: 'dim' 384 is not divisible by 'heads' 7"},
      {{"patch_size", "15"}, "'image_size' 384 is not divisible by 'patch_size' 15"},
      {{"depth", "0"}, "'depth' must be positive, got 0"},
      {{"ln_eps", "-1"}, "'ln_eps' must be positive, got -1"},
      {{"mlp_ratio", "nan"}, "'mlp_ratio' nan gives no MLP width"},
  };
  for (auto& [kv, msg] : bad) {
    CAPTURE(kv.first);
    CHECK_THROWS_WITH_AS(vit::config_from_metadata(with(kv.first, kv.second), "m.safetensors"),
                         doctest::Contains(msg.c_str()), Error);
  }
}

TEST_CASE("vit model: timm's parameter names and shapes, and vit-tiny's parameter count") {
  Generator g(1);
  vit::VisionTransformer m(tiny(8, 4, 8, 2, 2), {&g});
  std::vector<std::string> names;
  std::map<std::string, Shape> shapes;
  for (auto& [n, t] : m.named_parameters()) names.push_back(n), shapes[n] = t->shape();
  std::vector<std::string> expect = {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"};
  for (std::string b : {"blocks.0.", "blocks.1."})
    for (std::string p : {"norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"})
      for (std::string w : {".weight", ".bias"}) expect.push_back(b + p + w);
  expect.push_back("norm.weight");
  expect.push_back("norm.bias");
  CHECK(names == expect);
  CHECK(shapes["cls_token"] == Shape{1, 1, 8});
  CHECK(shapes["pos_embed"] == Shape{1, 5, 8});
  CHECK(shapes["patch_embed.proj.weight"] == Shape{8, 3, 4, 4});
  CHECK(shapes["blocks.1.attn.qkv.weight"] == Shape{24, 8});
  CHECK(shapes["blocks.1.mlp.fc1.weight"] == Shape{32, 8});
  CHECK(shapes["blocks.1.mlp.fc2.weight"] == Shape{8, 32});

  ViTConfig nob = tiny();
  nob.qkv_bias = false;
  vit::VisionTransformer n(nob, {&g});
  for (auto& [name, t] : n.named_parameters()) CHECK(name != "blocks.0.attn.qkv.bias");
  vit::VisionTransformer with_bias(tiny(), {&g});
  CHECK(with_bias.parameter_count() - n.parameter_count() == 24);  // one block's qkv bias, 3D

  vit::VisionTransformer t(vit::vit_config("vit-tiny"), {&g});
  CHECK(t.parameter_count() == 5524416);  // timm's vit_tiny_patch16_224 (5,717,416) without its 1000-class head
}

TEST_CASE("vit model: random initialisation follows timm and is fixed by the seed") {
  ViTConfig c = tiny(32, 4, 64, 2, 4);  // 64 patches, D 64
  Generator g1(11), g2(11), g3(12);
  vit::VisionTransformer a(c, {&g1}), b(c, {&g2}), d(c, {&g3});
  for (auto& [n, t] : a.state_dict()) {
    CAPTURE(n);
    Tensor other;
    for (auto& [m, u] : b.state_dict())
      if (m == n) other = u;
    CHECK(t.to_vector() == other.to_vector());
  }
  CHECK(a.pos_embed.to_vector() != d.pos_embed.to_vector());
  CHECK(a.blocks[1]->mlp.fc2.weight.to_vector() != d.blocks[1]->mlp.fc2.weight.to_vector());

  for (Tensor* w : {&a.pos_embed, &a.patch_embed.weight, &a.blocks[0]->attn.qkv.weight, &a.blocks[1]->mlp.fc1.weight}) {
    Stats s = stats(*w);
    CHECK(std::fabs(s.mean) < 0.002);
    CHECK(s.std == doctest::Approx(0.02).epsilon(0.05));
    CHECK((s.min >= -2 && s.max <= 2));
  }
  Stats cls = stats(a.cls_token);
  CHECK(cls.std > 0);
  CHECK(cls.std < 3e-6);
  CHECK(std::fabs(cls.max) < 1e-5);
  for (Tensor* z : {&a.patch_embed.bias, &a.blocks[0]->attn.qkv.bias, &a.blocks[0]->attn.proj.bias,
                    &a.blocks[1]->mlp.fc2.bias, &a.norm.bias, &a.blocks[0]->norm1.bias})
    CHECK(z->to_vector() == std::vector<double>(size_t(z->numel()), 0.0));
  for (Tensor* o : {&a.norm.weight, &a.blocks[1]->norm2.weight})
    CHECK(o->to_vector() == std::vector<double>(size_t(o->numel()), 1.0));
  for (auto& [n, t] : a.named_parameters()) CHECK(t->requires_grad());

  // random = false: zeros where the draws would be (for a model a checkpoint is about to fill), and the
  // generator is not advanced.
  Generator g4(11);
  vit::VisionTransformer z(c, {&g4, DType::F32, Device::CPU, false});
  CHECK(z.pos_embed.to_vector() == std::vector<double>(size_t(z.pos_embed.numel()), 0.0));
  CHECK(z.blocks[0]->attn.qkv.weight.to_vector() == std::vector<double>(size_t(3 * 64 * 64), 0.0));
  CHECK(z.norm.weight.to_vector() == std::vector<double>(64, 1.0));
  CHECK(g4.next_u64() == Generator(11).next_u64());
}

TEST_CASE("vit model: images of the wrong shape or dtype are rejected with the expected shape") {
  Generator g(2);
  vit::VisionTransformer m(tiny(), {&g});
  CHECK(m.forward(zeros({3, 3, 8, 8})).shape() == Shape{3, 5, 8});
  CHECK_THROWS_WITH_AS(
      m.forward(zeros({1, 3, 8, 12})),
      doctest::Contains("[VisionTransformer] images must be (B, 3, 8, 8) for vit-t, got (1, 3, 8, 12)"), Error);
  CHECK_THROWS_WITH_AS(m.forward(zeros({1, 1, 8, 8})), doctest::Contains("got (1, 1, 8, 8)"), Error);
  CHECK_THROWS_WITH_AS(m.forward(zeros({3, 8, 8})), doctest::Contains("got (3, 8, 8)"), Error);
  CHECK_THROWS_WITH_AS(m.forward(zeros({1, 3, 8, 8}, DType::F64)),
                       doctest::Contains("[VisionTransformer] images are f64 cpu (1, 3, 8, 8) but the model is f32"),
                       Error);
  ViTConfig bad = tiny();
  bad.heads = 3;
  CHECK_THROWS_WITH_AS(vit::VisionTransformer(bad, {&g}),
                       doctest::Contains("VisionTransformer(vit-t): 'dim' 8 is not divisible by 'heads' 3"), Error);
}

TEST_CASE("vit checkpoint: save then load gives the same model, metadata carries the architecture") {
  Generator g(3);
  ViTConfig c = tiny(8, 4, 8, 2, 2);
  c.qkv_bias = false;
  c.ln_eps = 1e-5;
  c.mean = {0.485, 0.456, 0.406};
  vit::VisionTransformer m(c, {&g});
  const std::string path = temp_path("roundtrip");
  m.save(path);
  CHECK(SafetensorsFile::open(path).metadata().at("arch") == "vit-t");
  auto r = vit::VisionTransformer::load(path);
  CHECK(!r->config().qkv_bias);
  CHECK(r->config().ln_eps == 1e-5);
  CHECK(r->config().mean == c.mean);
  Tensor x = randn({2, 3, 8, 8}, DType::F32, Device::CPU, &g);
  CHECK(r->forward(x).to_vector() == m.forward(x).to_vector());
  std::remove(path.c_str());
}

TEST_CASE("vit checkpoint: loading is strict and errors name the file and the tensor") {
  auto [tensors, meta] = fixture_contents();
  auto write = [&](const std::string& stem, auto edit, std::map<std::string, std::string> md) {
    auto t = tensors;
    edit(t);
    const std::string path = temp_path(stem);
    save_safetensors(path, t, md);
    return path;
  };
  auto expect_error = [&](const std::string& path, const std::string& msg) {
    CHECK_THROWS_WITH_AS(vit::VisionTransformer::load(path), doctest::Contains((path + ": " + msg).c_str()), Error);
    std::remove(path.c_str());
  };
  using List = std::vector<std::pair<std::string, Tensor>>;
  expect_error(write(
                   "missing", [](List& t) { std::erase_if(t, [](auto& p) { return p.first == "norm.bias"; }); }, meta),
               "1 tensor(s) missing: norm.bias");
  expect_error(write(
                   "extra",
                   [](List& t) {
                     t.push_back({"head.weight", zeros({10, 32})});
                   },
                   meta),
               "1 unexpected tensor(s): head.weight");
  expect_error(write(
                   "shape",
                   [](List& t) {
                     for (auto& [n, v] : t)
                       if (n == "blocks.1.attn.qkv.weight") v = zeros({96, 31});
                   },
                   meta),
               "tensor 'blocks.1.attn.qkv.weight' has shape (96, 31), the model expects (96, 32)");
  auto deeper = meta;
  deeper["depth"] = "3";
  expect_error(write(
                   "depth", [](List&) {}, deeper),
               "12 tensor(s) missing: blocks.2.norm1.weight");
  auto nometa = std::map<std::string, std::string>{};
  expect_error(write(
                   "nometa", [](List&) {}, nometa),
               "checkpoint metadata lacks 'arch'");
  // The resampling path checks pos_embed against the metadata's grid before anything else.
  auto bigger = meta;
  bigger["image_size"] = "20";
  const std::string p = write(
      "grid", [](List&) {}, bigger);
  CHECK_THROWS_WITH_AS(
      vit::VisionTransformer::load(p, 16),
      doctest::Contains((p + ": tensor 'pos_embed' has shape (1, 17, 32), its metadata's 5 x 5 grid").c_str()), Error);
  std::remove(p.c_str());
  // A bf16 checkpoint loads (converted to the model's dtype).
  const std::string half = write(
      "bf16",
      [](List& t) {
        for (auto& [n, v] : t) v = to(v, DType::BF16);
      },
      meta);
  auto m = vit::VisionTransformer::load(half);
  CHECK(m->pos_embed.dtype() == DType::F32);
  std::remove(half.c_str());
}
