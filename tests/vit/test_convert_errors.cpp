// tests/vit/test_convert_errors.cpp: every way a checkpoint can fail to convert gives an error naming the
// file and the tensor (in the source's own naming where it has one), and a failure writes nothing.
#include <filesystem>
#include <fstream>

#include "tests/vit/convert_helpers.h"

namespace {
// A timm-named tiny ViT: width 32, 3 blocks, MLP 64, patch 8, 4 x 4 grid; heads given.
StateDict tiny() { return make_timm(32, 3, 64, 8, 4); }
const ConvertOptions kTimm4 = with("timm", 4);
}  // namespace

TEST_CASE("convert errors: missing, unexpected, repeated and wrongly shaped tensors") {
  StateDict sd = tiny();
  sd.erase("blocks.1.norm2.bias");
  expect_error([&] { convert_state_dict(sd, kTimm4, kSrc); }, {kSrc, "missing tensor 'blocks.1.norm2.bias'"});

  sd = tiny();
  sd.erase("cls_token");
  expect_error([&] { convert_state_dict(sd, kTimm4, kSrc); }, {kSrc, "missing tensor 'cls_token'"});

  sd = tiny();
  sd["blocks.0.ls1.gamma"] = ones({32});  // layer scale (DeiT III): not in this ViT
  expect_error([&] { convert_state_dict(sd, kTimm4, kSrc); }, {kSrc, "unexpected tensor 'blocks.0.ls1.gamma'"});
  sd = tiny();
  sd["dist_token"] = zeros({1, 1, 32});
  expect_error([&] { convert_state_dict(sd, kTimm4, kSrc); }, {kSrc, "unexpected tensor 'dist_token'"});
  sd = tiny();
  sd["blocks.01.norm1.weight"] = ones({32});  // not block 1
  expect_error([&] { convert_state_dict(sd, kTimm4, kSrc); }, {kSrc, "unexpected tensor 'blocks.01.norm1.weight'"});
  sd = tiny();
  sd["fc_norm.weight"] = ones({32});
  expect_error([&] { convert_state_dict(sd, kTimm4, kSrc); }, {kSrc, "'fc_norm.weight'", "fc_norm"});

  sd = tiny();
  sd["module.norm.bias"] = sd.at("norm.bias");
  expect_error([&] { convert_state_dict(sd, kTimm4, kSrc); }, {kSrc, "'module.norm.bias'", "'norm.bias'", "both"});

  sd = tiny();
  sd["blocks.2.attn.proj.weight"] = zeros({32, 31});
  expect_error([&] { convert_state_dict(sd, kTimm4, kSrc); },
               {kSrc, "'blocks.2.attn.proj.weight'", "has shape (32, 31)", "expected (32, 32)"});
  sd = tiny();
  sd["blocks.1.attn.qkv.bias"] = zeros({95});
  expect_error([&] { convert_state_dict(sd, kTimm4, kSrc); }, {kSrc, "'blocks.1.attn.qkv.bias'", "(95,)", "(96,)"});
  sd = tiny();
  sd["patch_embed.proj.weight"] = zeros({32, 3, 8, 4});
  expect_error([&] { convert_state_dict(sd, kTimm4, kSrc); }, {kSrc, "'patch_embed.proj.weight'", "(32, 3, 8, 4)"});
  sd = tiny();
  sd["cls_token"] = zeros({1, 32});
  expect_error([&] { convert_state_dict(sd, kTimm4, kSrc); }, {kSrc, "'cls_token'", "(1, 32)", "(1, 1, D)"});

  sd = tiny();  // one block without qkv bias while the others have it: the missing one is named
  sd.erase("blocks.2.attn.qkv.bias");
  expect_error([&] { convert_state_dict(sd, kTimm4, kSrc); }, {kSrc, "missing tensor 'blocks.2.attn.qkv.bias'"});
}

TEST_CASE("convert errors: holes in the blocks, a non-square grid, heads, options") {
  expect_error([&] { convert_state_dict(make_timm(32, 4, 64, 8, 4, true, /*skip_block=*/1), kTimm4, kSrc); },
               {kSrc, "block 1 is missing", "blocks.1.*"});
  expect_error([&] { convert_state_dict(make_timm(32, 2, 64, 8, 4, true, /*skip_block=*/0), kTimm4, kSrc); },
               {kSrc, "block 0 is missing"});
  StateDict sd = tiny();
  sd["pos_embed"] = zeros({1, 16, 32});  // 15 patch positions
  expect_error([&] { convert_state_dict(sd, kTimm4, kSrc); }, {kSrc, "'pos_embed'", "15 patch positions", "square"});

  expect_error([&] { convert_state_dict(tiny(), with("timm"), kSrc); }, {kSrc, "width-32", "--heads"});
  expect_error([&] { convert_state_dict(tiny(), with("timm", 5), kSrc); }, {kSrc, "not divisible by 'heads' 5"});
  ConvertOptions o = kTimm4;
  o.mean = {0.5, 0.5};
  expect_error([&] { convert_state_dict(tiny(), o, kSrc); }, {"mean needs 3 values"});
  expect_error([&] { convert_state_dict(tiny(), with("keras", 4), kSrc); }, {"unknown checkpoint source 'keras'"});
  o = kTimm4;
  o.arch = "vit-gigantic";
  expect_error([&] { convert_state_dict(tiny(), o, kSrc); }, {"unknown ViT architecture 'vit-gigantic'"});
}

TEST_CASE("convert errors: dtypes other than F32, F16 and BF16 are refused") {
  StateDict sd = tiny();
  sd["blocks.0.mlp.fc1.bias"] = to(sd.at("blocks.0.mlp.fc1.bias"), DType::F64);
  expect_error([&] { convert_state_dict(sd, kTimm4, kSrc); }, {kSrc, "'blocks.0.mlp.fc1.bias'", "dtype F64"});
  sd = tiny();
  sd["norm.weight"] = to(sd.at("norm.weight"), DType::I64);
  expect_error([&] { convert_state_dict(sd, kTimm4, kSrc); }, {kSrc, "'norm.weight'", "dtype I64"});
}

TEST_CASE("convert errors: Hugging Face and torchvision names appear in the messages") {
  StateDict hf = load(kHf);
  hf.erase("encoder.layer.1.attention.attention.key.weight");
  expect_error([&] { convert_state_dict(hf, with("hf", 4), kHf); },
               {kHf, "missing tensor 'encoder.layer.1.attention.attention.key.weight'", "blocks.1.attn.qkv.weight"});
  hf = load(kHf);
  hf["encoder.layer.0.attention.attention.value.bias"] = zeros({31});
  expect_error([&] { convert_state_dict(hf, with("hf", 4), kHf); },
               {kHf, "'encoder.layer.0.attention.attention.value.bias' has shape (31,)", "query.bias"});
  hf = load(kHf);
  hf.erase("encoder.layer.0.layernorm_after.bias");
  expect_error([&] { convert_state_dict(hf, with("hf", 4), kHf); },
               {kHf, "'blocks.0.norm2.bias'", "'encoder.layer.0.layernorm_after.bias'"});
  hf = load(kHf);
  hf["encoder.layer.1.intermediate.dense.weight"] = zeros({64, 33});
  expect_error([&] { convert_state_dict(hf, with("hf", 4), kHf); },
               {kHf, "'encoder.layer.1.intermediate.dense.weight'", "(64, 33)", "expected (64, 32)"});

  StateDict tv = load(kTorchvision);
  tv.erase("encoder.layers.encoder_layer_1.self_attention.in_proj_bias");
  expect_error([&] { convert_state_dict(tv, with("torchvision", 4), kTorchvision); },
               {kTorchvision, "encoder.layers.encoder_layer_1.self_attention.in_proj_bias"});
  tv = load(kTorchvision);
  tv["encoder.layers.encoder_layer_0.mlp.1.weight"] = zeros({4});
  expect_error([&] { convert_state_dict(tv, with("torchvision", 4), kTorchvision); },
               {kTorchvision, "unexpected tensor 'encoder.layers.encoder_layer_0.mlp.1.weight'"});
  // The right tensors under the wrong source's names: the first one met is unexpected.
  expect_error([&] { convert_state_dict(load(kTimm), with("hf", 4), kTimm); },
               {kTimm, "unexpected tensor", "it is a timm name"});
}

TEST_CASE("convert errors: corrupt files and config files name the file, and a failure writes nothing") {
  const std::string bad = temp_path("corrupt"), out = temp_path("out");
  std::filesystem::copy_file(kTimm, bad, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::resize_file(bad, std::filesystem::file_size(bad) - 10);  // truncated
  expect_error([&] { convert_checkpoint(bad, out, kTimm4); }, {bad, "truncated"});
  CHECK(!std::filesystem::exists(out));

  {  // a header whose cls_token byte range is too short for its shape
    std::string header = R"({"cls_token":{"dtype":"F32","shape":[1,1,32],"data_offsets":[0,124]}})";
    std::ofstream f(bad, std::ios::binary | std::ios::trunc);
    for (int i = 0; i < 8; ++i) f.put(char((header.size() >> (8 * i)) & 0xff));
    f << header << std::string(124, '\0');
  }
  expect_error([&] { convert_checkpoint(bad, out, kTimm4); }, {bad, "'cls_token'", "needs 128 bytes"});

  // A conversion that fails late (a shape error) leaves an existing output untouched and no temporary file.
  { std::ofstream(out) << "previous"; }
  StateDict sd = tiny();
  sd["norm.bias"] = zeros({33});
  save_safetensors(bad, std::vector<std::pair<std::string, Tensor>>(sd.begin(), sd.end()));
  expect_error([&] { convert_checkpoint(bad, out, kTimm4); }, {bad, "'norm.bias'", "(33,)"});
  std::ifstream kept(out);
  std::string text((std::istreambuf_iterator<char>(kept)), std::istreambuf_iterator<char>());
  CHECK(text == "previous");
  for (const auto& e : std::filesystem::directory_iterator("/tmp"))
    CHECK_MESSAGE(e.path().string().rfind(out + ".tmp", 0) != 0, e.path().string());
  std::remove(out.c_str());
  std::remove(bad.c_str());

  // Config files beside a Hugging Face checkpoint: a malformed one, or a GELU variant the ViT does not compute.
  const std::filesystem::path dir = "/tmp/sanf_test_convert_hf_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string model = (dir / "model.safetensors").string(), config = (dir / "config.json").string();
  std::filesystem::copy_file(kHf, model);
  { std::ofstream(config) << "{\"num_attention_heads\": 4, \"layer_norm_eps\": 1e-6, \"image_size\": [32, 32]}"; }
  { std::ofstream(dir / "preprocessor_config.json") << "{\"image_mean\": [0.1, 0.2, 0.3], \"image_std\": [1, 1, 1]}"; }
  const SourceConfig cfg = read_source_config("hf", model);
  CHECK(cfg.path == config);
  CHECK(cfg.heads == 4);
  CHECK(cfg.image_size == 32);
  CHECK(cfg.ln_eps == 1e-6);
  CHECK(cfg.std == std::vector<double>{1, 1, 1});
  convert_checkpoint(model, out, with("hf"));
  CHECK(SafetensorsFile::open(out).metadata().at("mean") == "0.1,0.2,0.3");
  CHECK(SafetensorsFile::open(out).metadata().at("ln_eps") == "1e-06");
  CHECK(SafetensorsFile::open(out).metadata().at("norm_source") == "from " + (dir / "preprocessor_config.json").string());
  { std::ofstream(config) << "{\"num_attention_heads\": 4, \"hidden_act\": \"gelu_new\"}"; }
  expect_error([&] { read_source_config("hf", model); }, {config, "hidden_act", "gelu_new"});
  { std::ofstream(config) << "{\"num_attention_heads\": 4,"; }
  expect_error([&] { read_source_config("hf", model); }, {config, "not a JSON object"});
  { std::ofstream(config) << "{\"patch_size\": \"8\"}"; }
  expect_error([&] { read_source_config("hf", model); }, {config, "'patch_size' must be an integer"});
  { std::ofstream(config) << "{\"pretrained_cfg\": {\"mean\": [0.485, 0.456, 0.406]}}"; }  // timm Hub layout
  CHECK(read_source_config("timm", model).mean == std::vector<double>{0.485, 0.456, 0.406});
  CHECK(read_source_config("timm", model).mean_std_from == config + " pretrained_cfg");
  CHECK(read_source_config("torchvision", model).path.empty());
  std::remove(out.c_str());
  std::filesystem::remove_all(dir);
}
