// tests/vit/test_convert.cpp: ViT weight conversion. The fixtures (tests/fixtures/make_convert_fixture.py)
// hold one torchvision ViT under all three namings; every error path must name the file and the tensor.
#include <cmath>

#include "tests/vit/convert_helpers.h"
#include "vit/vit.h"

TEST_CASE("convert: torchvision, timm and hf fixtures give bit-identical canonical checkpoints") {
  struct Case {
    std::string path, source, eps, mean;
    int64_t heads;  // width 32 is not in the width table: torchvision and timm need it, hf reads config.json
  };
  const Case cases[] = {{kTorchvision, "torchvision", "1e-06", "0.485,0.456,0.406", 4},
                        {kTimm, "timm", "1e-06", "0.5,0.5,0.5", 4},
                        {kHf, "hf", "1e-12", "0.5,0.5,0.5", 0}};
  std::vector<std::pair<std::string, std::vector<char>>> reference;  // the torchvision conversion's tensors
  for (const Case& c : cases) {
    CAPTURE(c.source);
    const std::string out = temp_path(c.source);
    convert_checkpoint(c.path, out, with(c.source, c.heads));
    SafetensorsFile f = SafetensorsFile::open(out);
    const Metadata& m = f.metadata();
    CHECK(m.at("format") == "sanf-vit");
    CHECK(m.at("source") == c.source);
    CHECK(m.at("arch") == "custom");
    CHECK(m.at("image_size") == "32");
    CHECK(m.at("patch_size") == "8");
    CHECK(m.at("in_chans") == "3");
    CHECK(m.at("dim") == "32");
    CHECK(m.at("depth") == "2");
    CHECK(m.at("heads") == "4");
    CHECK(m.at("mlp_ratio") == "2");
    CHECK(m.at("qkv_bias") == "true");
    CHECK(m.at("ln_eps") == c.eps);
    CHECK(m.at("mean") == c.mean);
    CHECK(m.at("std") == (c.source == "torchvision" ? "0.229,0.224,0.225" : "0.5,0.5,0.5"));
    // No --mean/--std and no normalisation beside the fixtures (hf's config.json has none): the default, said so.
    CHECK(m.at("norm_source").rfind("default for " + c.source + ": " +
                                        (c.source == "torchvision" ? "ImageNet's" : "0.5 per channel"),
                                    0) == 0);
    CHECK(config_from_metadata(m, out).heads == 4);  // the ViT's own reader accepts it
    // Exactly the canonical set, in model order, all f32; heads and the HF pooler are gone.
    std::vector<std::pair<std::string, std::vector<char>>> got;
    for (const TensorEntry& e : f.entries()) {
      CHECK(e.dtype == DType::F32);
      got.push_back({e.name, f.get(e.name).to_bytes()});
    }
    REQUIRE(got.size() == 4 + 2 * 12 + 2);
    CHECK(got.front().first == "cls_token");
    CHECK(got[4].first == "blocks.0.norm1.weight");
    CHECK(got.back().first == "norm.bias");
    if (reference.empty()) {
      reference = got;
    } else {
      for (size_t i = 0; i < got.size(); ++i) {
        CHECK(got[i].first == reference[i].first);
        CHECK_MESSAGE(got[i].second == reference[i].second, got[i].first);
      }
    }
    std::remove(out.c_str());
  }
  // And the values are torchvision's own: qkv is in_proj, widened from f16.
  StateDict tv = load(kTorchvision);
  auto [canon, meta] = convert_state_dict(load(kTorchvision), with("torchvision", 4), kTorchvision);
  CHECK(canon.at("blocks.1.attn.qkv.weight").to_vector() ==
        tv.at("encoder.layers.encoder_layer_1.self_attention.in_proj_weight").to_vector());
  CHECK(canon.at("blocks.1.mlp.fc2.bias").to_vector() ==
        tv.at("encoder.layers.encoder_layer_1.mlp.3.bias").to_vector());
}

TEST_CASE("convert: the architecture is read off the tensors") {
  SUBCASE("no qkv bias, mlp ratio 4, heads from the width table") {
    auto [sd, m] = convert_state_dict(make_timm(192, 3, 768, 16, 2, /*qkv_bias=*/false), with("timm"), kSrc);
    CHECK(m.at("dim") == "192");
    CHECK(m.at("depth") == "3");
    CHECK(m.at("heads") == "3");
    CHECK(m.at("patch_size") == "16");
    CHECK(m.at("image_size") == "32");
    CHECK(m.at("mlp_ratio") == "4");
    CHECK(m.at("qkv_bias") == "false");
    CHECK(m.at("arch") == "custom");  // depth 3 is no preset
    CHECK(sd.size() == 4 + 3 * 11 + 2);
    CHECK(sd.count("blocks.0.attn.qkv.bias") == 0);
  }
  SUBCASE("a preset's sizes are recognised by name, and --arch agrees") {
    const StateDict tiny = make_timm(192, 12, 768, 16, 2);
    CHECK(convert_state_dict(tiny, with("timm"), kSrc).second.at("arch") == "vit-tiny");
    ConvertOptions o = with("timm");
    o.arch = "vit-tiny";
    CHECK(convert_state_dict(tiny, o, kSrc).second.at("arch") == "vit-tiny");
    o.arch = "vit-small";
    expect_error([&] { convert_state_dict(tiny, o, kSrc); },
                 {"--arch vit-small", "dim is 384", kSrc, "192", "cls_token"});
  }
  SUBCASE("--arch mismatch in depth and heads names the field") {
    ConvertOptions o = with("timm");
    o.arch = "vit-tiny";
    expect_error([&] { convert_state_dict(make_timm(192, 11, 768, 16, 2), o, kSrc); }, {"depth is 12", "has 11", kSrc});
    o.heads = 4;
    expect_error([&] { convert_state_dict(make_timm(192, 12, 768, 16, 2), o, kSrc); }, {"heads is 3", "has 4", kSrc});
  }
  SUBCASE("options and the source's config fill in heads, eps, mean and std") {
    ConvertOptions o = with("timm", 8);
    o.ln_eps = 1e-5;
    o.mean = {0.485, 0.456, 0.406};
    o.std = {0.229, 0.224, 0.225};
    auto [sd, m] = convert_state_dict(make_timm(32, 1, 32, 4, 3), o, kSrc);
    CHECK(m.at("heads") == "8");
    CHECK(m.at("ln_eps") == "1e-05");
    CHECK(m.at("mlp_ratio") == "1");
    CHECK(m.at("std") == "0.229,0.224,0.225");
    CHECK(m.at("norm_source") == "from --mean/--std");
  }
  SUBCASE("the source's config fills in what the options leave unset, and its sizes must match") {
    SourceConfig cfg;
    cfg.path = "dir/config.json";
    cfg.heads = 2;
    cfg.ln_eps = 1e-7;
    cfg.mean = {0.1, 0.2, 0.3};
    cfg.image_size = 12;
    cfg.qkv_bias = true;
    auto [sd, m] = convert_state_dict(make_timm(32, 1, 32, 4, 3), with("timm"), kSrc, cfg);
    CHECK(m.at("heads") == "2");
    CHECK(m.at("ln_eps") == "1e-07");
    CHECK(m.at("mean") == "0.1,0.2,0.3");
    CHECK(m.at("std") == "0.5,0.5,0.5");
    // mean from the config, std its default: both named. timm's default points at --mean/--std for IN-1k models.
    CHECK(m.at("norm_source").rfind("mean from dir/config.json; std default for timm: 0.5 per channel", 0) == 0);
    CHECK(m.at("norm_source").find("need --mean/--std") != std::string::npos);
    cfg.std = {0.2, 0.2, 0.2};
    cfg.mean_std_from = "dir/config.json pretrained_cfg";
    CHECK(convert_state_dict(make_timm(32, 1, 32, 4, 3), with("timm"), kSrc, cfg).second.at("norm_source") ==
          "from dir/config.json pretrained_cfg");
    cfg.std.clear();
    cfg.mean_std_from.clear();
    cfg.image_size = 16;
    expect_error([&] { convert_state_dict(make_timm(32, 1, 32, 4, 3), with("timm"), kSrc, cfg); },
                 {"dir/config.json", "image_size is 16", kSrc, "has 12", "pos_embed"});
    cfg.image_size.reset();
    cfg.qkv_bias = false;
    expect_error([&] { convert_state_dict(make_timm(32, 1, 32, 4, 3), with("timm"), kSrc, cfg); },
                 {"dir/config.json", "qkv_bias is false", kSrc, "has qkv biases"});
  }
}

TEST_CASE("convert: wrapper prefixes, dropped heads and old torchvision names") {
  StateDict timm = make_timm(32, 2, 64, 8, 4);
  StateDict wrapped;
  for (const auto& [k, t] : timm) wrapped["module." + k] = t;
  wrapped["module.head.weight"] = zeros({10, 32});
  wrapped["pre_logits.fc.weight"] = zeros({32, 32});
  auto [a, ma] = convert_state_dict(wrapped, with("timm", 4), kSrc);
  CHECK(a.size() == timm.size());
  CHECK(a.at("blocks.1.mlp.fc1.weight").to_vector() == timm.at("blocks.1.mlp.fc1.weight").to_vector());

  StateDict hf;  // ViTForImageClassification: everything under "vit.", plus a classifier
  for (const auto& [k, t] : load(kHf)) hf["vit." + k] = t;
  hf["classifier.weight"] = zeros({2, 32});
  CHECK(convert_state_dict(hf, with("hf", 4), kSrc).first.size() == 30);

  StateDict tv;  // the names of torchvision's published .pth files (MLPBlock before 0.13)
  for (const auto& [k, t] : load(kTorchvision)) {
    std::string name = k;
    for (const auto& [from, to] :
         {std::pair<std::string, std::string>{".mlp.0.", ".mlp.linear_1."}, {".mlp.3.", ".mlp.linear_2."}})
      if (size_t at = name.find(from); at != std::string::npos) name.replace(at, from.size(), to);
    tv[name] = t;
  }
  CHECK(tv.count("encoder.layers.encoder_layer_0.mlp.linear_1.weight") == 1);
  CHECK(convert_state_dict(tv, with("torchvision", 4), kSrc).first.size() == 30);
}

TEST_CASE("convert: sanf's ViT on the converted torchvision checkpoint reproduces torchvision's forward") {
  const std::string out = temp_path("forward");
  convert_checkpoint(kTorchvision, out, with("torchvision", 4));
  auto model = VisionTransformer::load(out);
  SafetensorsFile ref = SafetensorsFile::open(kDir + "/torchvision_forward.safetensors");
  const std::vector<double> got = model->forward(ref.get("images")).to_vector(), want = ref.get("tokens").to_vector();
  REQUIRE(got.size() == want.size());
  double scale = 0, err = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    scale = std::max(scale, std::abs(want[i]));
    err = std::max(err, std::abs(got[i] - want[i]));
  }
  CHECK(err <= 1e-5 * scale);  // f32 against f32, summed in different orders
  std::remove(out.c_str());
}
