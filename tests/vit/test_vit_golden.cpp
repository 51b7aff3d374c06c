// tests/vit/test_vit_golden.cpp: the ViT against PyTorch (fixture from tests/fixtures/make_vit_fixture.py):
// forward tokens and gradients vs a plain-torch transcription of timm's forward (itself checked against
// torchvision's ViT by the script), and position-embedding resampling vs F.interpolate.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "core/safetensors.h"
#include "tests/testing/gradcheck.h"
#include "tests/vit/vit_golden_check.h"
#include "vit/pos_embed.h"
#include "vit/vit.h"

using namespace sanf;
using namespace sanf::testing;

TEST_CASE("vit golden: forward and backward match PyTorch (f32 to 1e-4, f64 to 1e-10)") {
  check_vit_golden(Device::CPU);
}

TEST_CASE("vit golden: position-embedding resampling matches F.interpolate bicubic (plain and antialiased)") {
  SafetensorsFile g = SafetensorsFile::open(fixture("vit_golden.safetensors"));
  const std::pair<int, int> sizes[] = {{4, 6}, {4, 3}, {6, 4}, {3, 7}};
  for (auto [old_grid, new_grid] : sizes)
    for (bool aa : {false, true}) {
      CAPTURE(old_grid);
      CAPTURE(new_grid);
      CAPTURE(aa);
      Tensor in = g.get("resample.in." + std::to_string(old_grid));
      Tensor ref = g.get(std::string("resample.") + (aa ? "aa." : "plain.") + std::to_string(old_grid) + "to" +
                         std::to_string(new_grid));
      Tensor out = vit::resample_pos_embed(in, old_grid, new_grid, aa);
      CHECK(out.dtype() == DType::F64);
      SANF_CHECK_CLOSE(out, ref, 1e-12, 1e-12);
      CHECK(out.to_vector()[0] == in.to_vector()[0]);  // the class position is copied
    }
  // f32 in, f32 out; same grid is the identity.
  Tensor in32 = to(g.get("resample.in.4"), DType::F32);
  CHECK(vit::resample_pos_embed(in32, 4, 4).to_vector() == in32.to_vector());
  SANF_CHECK_CLOSE(vit::resample_pos_embed(in32, 4, 6), g.get("resample.plain.4to6"), 1e-6, 1e-6);
}

TEST_CASE("vit golden: resampling weights interpolate (rows sum to 1) and bad grids are rejected") {
  for (bool aa : {false, true})
    for (auto [in, out] : {std::pair{14, 24}, std::pair{24, 14}, std::pair{7, 7}, std::pair{1, 3}}) {
      auto w = vit::bicubic_weights(in, out, aa);
      for (auto& row : w) {
        double s = 0;
        for (double v : row) s += v;
        CHECK(s == doctest::Approx(1.0).epsilon(1e-12));
      }
    }
  CHECK_THROWS_WITH_AS(vit::resample_pos_embed(zeros({1, 16, 8}), 4, 6),
                       doctest::Contains("pos_embed must be (1, 1 + 4*4, D) for a 4 x 4 grid, got (1, 16, 8)"), Error);
}

TEST_CASE("vit golden: loading at another image size resamples the position embedding") {
  const std::string path = fixture("vit_tiny.safetensors");
  auto model = vit::VisionTransformer::load(path, 24);  // grid 4 -> 6
  CHECK(model->config().image_size == 24);
  CHECK(model->pos_embed.shape() == Shape{1, 37, 32});
  Tensor expect = vit::resample_pos_embed(SafetensorsFile::open(path).get("pos_embed"), 4, 6);
  CHECK(model->pos_embed.to_vector() == expect.to_vector());
  CHECK(model->forward(zeros({1, 3, 24, 24})).shape() == Shape{1, 37, 32});
  auto aa = vit::VisionTransformer::load(path, 8, DType::F32, Device::CPU, true);  // grid 4 -> 2, antialiased
  CHECK(aa->pos_embed.to_vector() ==
        vit::resample_pos_embed(SafetensorsFile::open(path).get("pos_embed"), 4, 2, true).to_vector());
  CHECK_THROWS_WITH_AS(vit::VisionTransformer::load(path, 18),
                       doctest::Contains("'image_size' 18 is not divisible by 'patch_size' 4"), Error);
}
