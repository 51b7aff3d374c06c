// tests/apps/test_maps.cpp: anomaly maps (apps/maps.h): the gradient map against finite differences, map
// sizes, the heat-map overlay, pixel AUROC, MVTec's masks, and the synthetic localization check: normal
// Fashion-MNIST images with a pasted foreign region, in MVTec's layout with masks, through train and
// `eval --masks` end to end (the pixel AUROCs are printed, not asserted: the backbone is random).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "apps/image_io.h"
#include "apps/maps.h"
#include "apps/train.h"
#include "tests/flows/flow_testing.h"
#include "tests/testing/temp_dir.h"

using namespace sanf;
using namespace sanf::apps;
namespace fs = std::filesystem;
using sanf::testing::rnd;
using sanf::testing::TempDir;

TEST_CASE("maps: the gradient map is the norm of d NLL / d token, checked by central differences") {
  flows::FlowConfig cfg = flows::testing_helpers::small_config(8, 4, 2, 6, 2);
  flows::Flow flow(cfg, DType::F64);
  flows::testing_helpers::randomize(flow, 11, 0.5);
  const int64_t B = 2, N = 4, D = 8;
  const Tensor y = rnd({B, D}, 1), P = rnd({B, N, D}, 2);
  const Tensor map = patch_maps(flow, MapKind::Gradient, y, P);
  REQUIRE(map.shape() == Shape{B, 2, 2});
  // Parameters keep no gradient from the map's backward.
  for (auto& [name, p] : flow.named_parameters()) CHECK_FALSE(p->grad().defined());
  const std::vector<double> got = map.to_vector();
  NoGradGuard no_grad;
  const double eps = 1e-6;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < N; ++j) {
      double sq = 0;
      for (int64_t c = 0; c < D; ++c) {
        auto nll_at = [&](double delta) {
          Tensor Pd = contiguous(P) + 0.0;
          Pd.data<double>()[(b * N + j) * D + c] += delta;
          return flows::nll(flow.forward(y, Pd)).to_vector()[size_t(b)];
        };
        const double g = (nll_at(eps) - nll_at(-eps)) / (2 * eps);
        sq += g * g;
      }
      CAPTURE(b);
      CAPTURE(j);
      CHECK(got[size_t(b * N + j)] == doctest::Approx(std::sqrt(sq)).epsilon(1e-5));
    }
}

TEST_CASE("maps: sizes on pooled flows, upsampling and the overlay palette") {
  flows::FlowConfig cfg = flows::testing_helpers::small_config(8, 16, 2, 6, 2);
  cfg.pool_grid = 2;
  flows::Flow flow(cfg);
  flows::testing_helpers::randomize(flow, 3, 0.5);
  const Tensor y = randn({3, 8}), P = randn({3, 16, 8});
  CHECK(patch_maps(flow, MapKind::Attention, y, P).shape() == Shape{3, 2, 2});  // the pooled grid
  CHECK(patch_maps(flow, MapKind::Gradient, y, P).shape() == Shape{3, 4, 4});   // the backbone's grid
  CHECK_THROWS_WITH_AS(patch_maps(flow, MapKind::None, y, P), doctest::Contains("no map kind"), Error);
  CHECK(parse_map_kind("gradient") == MapKind::Gradient);
  CHECK_THROWS_WITH_AS(parse_map_kind("saliency"), doctest::Contains("unknown map kind 'saliency'"), Error);

  const Tensor up = upsample_map(Tensor::from_vector({0, 1, 2, 3}, {2, 2}), 6, 4);
  REQUIRE(up.shape() == Shape{6, 4});
  const std::vector<double> u = up.to_vector();
  CHECK(u.front() == 0);  // corners keep their cell's value (align_corners=False edges clamp)
  CHECK(u.back() == 3);

  // A grey image under a map from 0 (left column) to 1 (right column): the left is the image darkened,
  // the right the palette's white blended over it.
  Tensor img = full({1, 2, 2}, 100, DType::U8);
  const Tensor o = overlay_heatmap(img, Tensor::from_vector({0, 1, 0, 1}, {2, 2}), 0, 1);
  REQUIRE(o.shape() == Shape{3, 2, 2});
  const std::vector<double> v = o.to_vector();
  CHECK(v[0] == 40);   // R at (0, 0): 0.4 * 100
  CHECK(v[1] == 193);  // R at (0, 1): 0.4 * 100 + 0.6 * 255
  CHECK(v[8] == 40);   // B at (0, 0)
  CHECK(v[9] == 193);  // B at (0, 1): white
  CHECK_THROWS_WITH_AS(overlay_heatmap(img, zeros({3, 3}), 0, 1), doctest::Contains("the map must be (2, 2)"), Error);
}

TEST_CASE("maps: pixel AUROC against masks of another size") {
  // A 4x4 map whose right half is high; an 8x8 mask whose right half is anomalous: perfect localization.
  Tensor map = zeros({4, 4});
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 2; c < 4; ++c) map.data<float>()[r * 4 + c] = 1.f + float(r);
  Tensor mask = zeros({1, 8, 8}, DType::U8);
  for (int64_t r = 0; r < 8; ++r)
    for (int64_t c = 4; c < 8; ++c) mask.data<uint8_t>()[r * 8 + c] = 255;
  PixelAuroc good;
  good.add(map, mask);
  good.add(zeros({4, 4}), Tensor());  // a normal image: all its pixels normal
  CHECK(good.pixels() == 32);
  CHECK(good.auroc() == 1.0);
  PixelAuroc inverted;
  inverted.add(neg(map), mask);
  CHECK(inverted.auroc() == 0.0);
  PixelAuroc none;
  none.add(map, Tensor());
  CHECK_THROWS_WITH_AS(none.auroc(), doctest::Contains("both classes are needed"), Error);
}

namespace {

// An MVTec-layout category from Fashion-MNIST trousers: train/good, test/good, and test/pasted whose images
// carry an 8x8 block cut from a bag image at a random place, with its mask in ground_truth/pasted/.
void make_pasted_category(const fs::path& root, int n_train, int n_test) {
  auto train = open_dataset("fashion-mnist", kDefaultFashionMnistDir, Split::Train);
  std::vector<int64_t> trousers, bags;
  for (int64_t i = 0; i < train->size() && (int64_t(trousers.size()) < n_train + 2 * n_test || bags.size() < 50); ++i)
    (train->label(i) == 1 ? trousers : train->label(i) == 8 ? bags : bags).push_back(i);
  Generator gen(17);
  auto name = [](int k) { return cat(k < 100 ? "0" : "", k < 10 ? "0" : "", k, ".png"); };
  fs::create_directories(root / "train/good");
  fs::create_directories(root / "test/good");
  fs::create_directories(root / "test/pasted");
  fs::create_directories(root / "ground_truth/pasted");
  int next = 0;
  for (int k = 0; k < n_train; ++k) write_png((root / "train/good" / name(k)).string(), train->image(trousers[size_t(next++)]));
  for (int k = 0; k < n_test; ++k) write_png((root / "test/good" / name(k)).string(), train->image(trousers[size_t(next++)]));
  for (int k = 0; k < n_test; ++k) {
    Tensor img = clone(train->image(trousers[size_t(next++)]));  // (1, 28, 28) u8, our own copy
    const Tensor donor = contiguous(train->image(bags[size_t(k) % bags.size()]));
    const auto r0 = int64_t(gen.uniform() * 20), c0 = int64_t(gen.uniform() * 20);
    Tensor mask = zeros({1, 28, 28}, DType::U8);
    for (int64_t r = r0; r < r0 + 8; ++r)
      for (int64_t c = c0; c < c0 + 8; ++c) {
        img.data<uint8_t>()[r * 28 + c] = donor.data<uint8_t>()[r * 28 + c];
        mask.data<uint8_t>()[r * 28 + c] = 255;
      }
    write_png((root / "test/pasted" / name(k)).string(), img);
    write_png((root / "ground_truth/pasted" / (fs::path(name(k)).stem().string() + "_mask.png")).string(), mask);
  }
}

}  // namespace

TEST_CASE("maps: MVTec masks are read, and a missing one is named") {
  TempDir tmp("masks");
  make_pasted_category(tmp.path / "cat", 4, 3);
  auto test = open_dataset("mvtec", tmp / "cat", Split::Test);
  CHECK(test->has_masks());
  CHECK_FALSE(open_dataset("mvtec", tmp / "cat", Split::Train)->has_masks());
  REQUIRE(test->size() == 6);
  CHECK_FALSE(test->mask(0).defined());  // good
  const Tensor m = test->mask(3);        // the first pasted image
  REQUIRE(m.shape() == Shape{1, 28, 28});
  const std::vector<double> v = m.to_vector();
  CHECK(std::count(v.begin(), v.end(), 255.0) == 64);
  fs::remove(tmp.path / "cat/ground_truth/pasted/001_mask.png");
  CHECK_THROWS_WITH_AS(test->mask(4), doctest::Contains("ground_truth/pasted/001_mask.png: the ground-truth mask"), Error);
  CHECK_THROWS_WITH_AS(open_dataset("fashion-mnist", kDefaultFashionMnistDir, Split::Test)->mask(0),
                       doctest::Contains("no ground-truth masks"), Error);
}

TEST_CASE("maps: the synthetic localization check runs end to end (train, eval --masks, maps in the report)") {
  TempDir tmp("localize");
  make_pasted_category(tmp.path / "cat", 120, 30);
  RunConfig c;
  c.dataset = "mvtec";
  c.data_dir = tmp / "cat";
  c.normal_class = "good";
  c.backbone = {"random:vit-tiny", 28, 4, 0, Device::CPU};  // the demo's backbone: 7 x 7 patches
  c.flow.layers = 2;
  c.epochs = 3;
  c.lr = 1e-3;
  c.cache_dir = tmp / "cache";
  train_run(c, tmp / "run", false);
  EvalOptions o;
  o.masks = true;
  o.thumbnails = 4;
  const nlohmann::json m = eval_run(tmp / "run", o);
  REQUIRE(m.contains("pixel_auroc"));
  for (const std::string kind : {"attention", "gradient", "random"}) {
    CAPTURE(kind);
    const double a = m["pixel_auroc"][kind].get<double>();
    CHECK((a >= 0 && a <= 1));
    MESSAGE("pixel AUROC, ", kind, " map: ", a);
  }
  CHECK(m["pixel_auroc"]["resolution"] == 28);
  const std::string html = sanf::testing::read_file(tmp.path / "run/report.html");
  CHECK(html.find("Anomaly maps (attention)") != std::string::npos);
  CHECK(html.find("pixel AUROC, gradient map") != std::string::npos);
  // maps.png: 4 rows (the thumbnails) of image, mask and map, 28-pixel images enlarged 4x into 128-pixel cells.
  const fs::path sheet = tmp.path / "run/maps.png";
  const Tensor png = read_image(sheet.string());
  CHECK(png.shape() == Shape{3, 4 * 132 + 4, 3 * 132 + 4});
  // The README's picture is this file: SANF_KEEP_MAPS=PATH keeps a copy.
  if (const char* keep = std::getenv("SANF_KEEP_MAPS")) fs::copy_file(sheet, keep, fs::copy_options::overwrite_existing);
  // An evaluation without maps removes the earlier maps.png.
  o.map = MapKind::None;
  o.masks = false;
  eval_run(tmp / "run", o);
  CHECK_FALSE(fs::exists(sheet));
}

TEST_CASE("maps: image_sheet lays images out on a grid, scaled to fit their cells") {
  Tensor grey = Tensor::empty({1, 2, 3}, DType::U8);  // 2 x 3, values 10..15
  for (int64_t i = 0; i < 6; ++i) grey.data<uint8_t>()[i] = uint8_t(10 + i);
  Tensor big = full({3, 20, 10}, 100.0, DType::U8);  // larger than a cell: shrunk to 6 x 3
  const Tensor s = image_sheet({{grey, Tensor()}, {big}}, 6, 1);
  REQUIRE(s.shape() == Shape{3, 2 * 7 + 1, 2 * 7 + 1});
  auto at = [&](int64_t c, int64_t y, int64_t x) { return int(s.data<uint8_t>()[(c * 15 + y) * 15 + x]); };
  // grey: enlarged 2x (6 / 3) to 4 x 6, centred vertically in its 6 x 6 cell at (1, 1): rows 2..5, cols 1..6.
  for (int64_t c = 0; c < 3; ++c) {
    CHECK(at(c, 1, 1) == 255);   // the centring margin
    CHECK(at(c, 2, 1) == 10);    // pixel (0, 0)
    CHECK(at(c, 3, 2) == 10);    // still pixel (0, 0): nearest neighbour
    CHECK(at(c, 2, 3) == 11);    // pixel (0, 1)
    CHECK(at(c, 5, 6) == 15);    // pixel (1, 2)
    CHECK(at(c, 6, 1) == 255);   // below it
    CHECK(at(c, 4, 10) == 255);  // the empty cell stays white
  }
  // big: area-averaged to 6 x 3 (flat 100), centred horizontally in the cell at (8, 1): cols 2..4.
  CHECK(at(1, 8, 2) == 100);
  CHECK(at(1, 13, 4) == 100);
  CHECK(at(1, 8, 1) == 255);
  CHECK(at(1, 8, 5) == 255);
  CHECK_THROWS_WITH_AS(image_sheet({{zeros({2, 4, 4}, DType::U8)}}, 6), doctest::Contains("[image sheet]"), Error);
}
