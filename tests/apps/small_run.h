// tests/apps/small_run.h: the run configuration the apps tests train: a slice of the real Fashion-MNIST
// (Debian's dataset-fashion-mnist, which `./run test` installs) with the tiny converted ViT fixture as the
// backbone (D = 32, 16 tokens), so each case takes seconds.
#pragma once

#include <doctest/doctest.h>

#include <filesystem>

#include "apps/train.h"
#include "tests/testing/temp_dir.h"

namespace sanf::testing {

inline apps::RunConfig small_config(const TempDir& tmp) {
  REQUIRE_MESSAGE(std::filesystem::exists(std::string(apps::kDefaultFashionMnistDir) + "/train-labels-idx1-ubyte.gz"),
                  "these tests need Debian's dataset-fashion-mnist (./run test installs it)");
  apps::RunConfig c;
  c.dataset = "fashion-mnist";
  c.data_dir = apps::kDefaultFashionMnistDir;
  c.normal_class = "trouser";
  c.backbone.spec = std::string(SANF_FIXTURES_DIR) + "/vit_tiny.safetensors";
  c.train_limit = 96;
  c.test_limit = 300;
  c.flow.layers = 2;
  c.epochs = 2;
  c.batch_size = 16;
  c.lr = 1e-3;
  c.seed = 5;
  c.cache_dir = tmp / "cache";
  c.extract_batch = 50;
  return c;
}

}  // namespace sanf::testing
