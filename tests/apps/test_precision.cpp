// tests/apps/test_precision.cpp: the backbone precision option (apps/extract.h): names, the tf32-on-CPU
// refusal, open_backbone applying bf16, the feature cache key and the run config carrying it.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "apps/features.h"
#include "apps/train.h"

using namespace sanf;
using namespace sanf::apps;

TEST_CASE("precision: names parse and print, unknown ones list the known") {
  for (BackbonePrecision p : {BackbonePrecision::F32, BackbonePrecision::TF32, BackbonePrecision::BF16})
    CHECK(parse_precision(precision_name(p)) == p);
  CHECK(std::string(precision_name(BackbonePrecision::BF16)) == "bf16");
  CHECK_THROWS_WITH_AS(parse_precision("fp8"), doctest::Contains("unknown precision 'fp8' (known: f32, tf32, bf16)"),
                       Error);
}

TEST_CASE("precision: tf32 is refused on the CPU, before anything is built") {
  CHECK_NOTHROW(check_precision(BackbonePrecision::TF32, Device::CUDA));
  CHECK_NOTHROW(check_precision(BackbonePrecision::BF16, Device::CPU));
  CHECK_THROWS_WITH_AS(check_precision(BackbonePrecision::TF32, Device::CPU),
                       doctest::Contains("--precision tf32 needs --device cuda"), Error);
  BackboneOptions o{"random:vit-tiny", 32, 4, 0, Device::CPU, BackbonePrecision::TF32};
  CHECK_THROWS_WITH_AS(open_backbone(o), doctest::Contains("--precision tf32 needs --device cuda"), Error);
}

TEST_CASE("precision: open_backbone applies bf16 to random and checkpoint backbones") {
  BackboneOptions o{"random:vit-tiny", 32, 4, 0, Device::CPU, BackbonePrecision::BF16};
  auto m = open_backbone(o);
  CHECK(m->precision() == nn::MatmulPrecision::BF16);
  o.precision = BackbonePrecision::F32;
  auto f = open_backbone(o);
  CHECK(f->precision() == nn::MatmulPrecision::F32);
  // Same weights (one seed), different GEMM precision: close, not equal.
  Generator g(1);
  const Tensor x = randn({2, 3, 32, 32}, DType::F32, Device::CPU, &g);
  NoGradGuard no_grad;
  const std::vector<double> a = m->forward(x).to_vector(), b = f->forward(x).to_vector();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  CHECK(worst > 0);
  CHECK(worst < 0.5);  // tokens after the final layer norm are O(1)

  BackboneOptions c{
      std::string(SANF_FIXTURES_DIR) + "/vit_tiny.safetensors", 0, 0, 0, Device::CPU, BackbonePrecision::BF16};
  auto ck = open_backbone(c);
  CHECK(ck->precision() == nn::MatmulPrecision::BF16);
  CHECK(ck->blocks[0]->attn.proj.weight_bf16.defined());
}

TEST_CASE("precision: the run config records a non-f32 precision, and only then") {
  RunConfig c;
  CHECK(!c.to_json()["backbone"].contains("precision"));  // f32 configs are what they were
  CHECK(RunConfig::from_json(c.to_json(), "test").backbone.precision == BackbonePrecision::F32);
  c.backbone.precision = BackbonePrecision::BF16;
  const auto j = c.to_json();
  CHECK(j["backbone"]["precision"] == "bf16");
  CHECK(RunConfig::from_json(j, "test").backbone.precision == BackbonePrecision::BF16);
}

TEST_CASE("precision: the feature cache key names a non-f32 precision, and only then") {
  REQUIRE_MESSAGE(std::filesystem::exists(std::string(kDefaultFashionMnistDir) + "/t10k-labels-idx1-ubyte.gz"),
                  "this test needs Debian's dataset-fashion-mnist (./run test installs it)");
  FeatureRequest r;
  r.backbone = {"random:vit-tiny", 32, 4, 0, Device::CPU};
  r.dataset = "fashion-mnist";
  r.data_dir = kDefaultFashionMnistDir;
  r.split = Split::Test;
  auto ds = open_dataset(r.dataset, r.data_dir, r.split, DatasetOptions{});
  const std::string k32 = feature_cache_key(r, *ds);
  CHECK(k32.find("precision") == std::string::npos);  // existing f32 caches keep their keys
  r.backbone.precision = BackbonePrecision::BF16;
  const std::string k16 = feature_cache_key(r, *ds);
  CHECK(k16.find("backbone.precision=bf16") != std::string::npos);
  CHECK(k16 != k32);
}
