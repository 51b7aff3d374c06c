// tests/vit/test_preprocess.cpp: resizing and normalisation against PyTorch (fixture from
// tests/fixtures/make_preprocess_fixture.py).
#include <doctest/doctest.h>

#include "autograd/ops.h"
#include "core/safetensors.h"
#include "tests/testing/gradcheck.h"
#include "vit/preprocess.h"

using namespace sanf;

TEST_CASE("preprocess: bilinear up, area down and gray replication match PyTorch") {
  SafetensorsFile f = SafetensorsFile::open(std::string(SANF_FIXTURES_DIR) + "/preprocess.safetensors");
  SANF_CHECK_CLOSE(vit::resize_image(clone(f.get("up.in")), 12, 16), f.get("up.out"), 1e-5, 1e-6);
  SANF_CHECK_CLOSE(vit::resize_image(clone(f.get("down.in")), 8, 6), f.get("down.out"), 1e-5, 1e-6);
  vit::ViTConfig cfg;
  cfg.image_size = 16;
  Tensor out = vit::preprocess({clone(f.get("gray.in"))}, cfg);
  CHECK(out.shape() == Shape{1, 3, 16, 16});
  SANF_CHECK_CLOSE(out, f.get("gray.out"), 1e-5, 1e-6);
}

TEST_CASE("preprocess: identity size keeps pixels, RGBA drops alpha, errors are clear") {
  Tensor img = Tensor::from_vector({0, 255, 51, 102, 10, 20, 30, 40, 1, 2, 3, 4, 9, 9, 9, 9}, {4, 2, 2}, DType::U8);
  vit::ViTConfig cfg;
  cfg.image_size = 2;
  cfg.mean = {0, 0, 0};
  cfg.std = {1, 1, 1};
  std::vector<double> v = vit::preprocess({img}, cfg).to_vector();
  CHECK(v.size() == 12);
  CHECK(v[1] == doctest::Approx(1.0));
  CHECK(v[2] == doctest::Approx(0.2));
  CHECK(v[11] == doctest::Approx(4.0 / 255));
  CHECK_THROWS_WITH_AS(vit::preprocess({zeros({2, 4, 4}, DType::U8)}, cfg), doctest::Contains("has 2 channels"), Error);
  CHECK_THROWS_WITH_AS(vit::preprocess({zeros({3, 4, 4})}, cfg), doctest::Contains("must be u8"), Error);
}
