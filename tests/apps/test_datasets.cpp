// tests/apps/test_datasets.cpp: each dataset reader on small files the test writes itself, their truncated
// and corrupt variants, and the real Fashion-MNIST from Debian's package when it is installed.
#include <doctest/doctest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "apps/datasets.h"
#include "tests/testing/temp_dir.h"

using namespace sanf;
using namespace sanf::apps;
namespace fs = std::filesystem;
using sanf::testing::TempDir;

namespace {
void write_file(const fs::path& p, const std::string& bytes, bool gzip = false) {
  if (gzip) {
    gzFile gz = gzopen(p.string().c_str(), "wb");
    gzwrite(gz, bytes.data(), unsigned(bytes.size()));
    gzclose(gz);
  } else {
    std::ofstream(p, std::ios::binary) << bytes;
  }
}

std::string be32(uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 0xff), char((v >> 8) & 0xff), char(v & 0xff)};
}

// n images of h x w whose pixel (i, y, x) = (i * 7 + y * w + x) % 256, labels i % 10.
void write_idx(const fs::path& dir, const std::string& stem, int n, int h, int w, bool gzip, int drop_bytes = 0) {
  std::string img = be32(0x803) + be32(uint32_t(n)) + be32(uint32_t(h)) + be32(uint32_t(w));
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < h * w; ++k) img += char((i * 7 + k) % 256);
  img.resize(img.size() - size_t(drop_bytes));
  std::string lab = be32(0x801) + be32(uint32_t(n));
  for (int i = 0; i < n; ++i) lab += char(i % 10);
  std::string sfx = gzip ? ".gz" : "";
  write_file(dir / (stem + "-images-idx3-ubyte" + sfx), img, gzip);
  write_file(dir / (stem + "-labels-idx1-ubyte" + sfx), lab, gzip);
}

void expect_error(const std::function<void()>& f, const std::string& fragment) {
  CAPTURE(fragment);
  try {
    f();
    FAIL("no error");
  } catch (const Error& e) {
    CHECK_MESSAGE(std::string(e.what()).find(fragment) != std::string::npos, e.what());
  }
}
}  // namespace

TEST_CASE("datasets: IDX, plain and gzipped") {
  for (bool gz : {false, true}) {
    TempDir d(gz ? "idxgz" : "idx");
    write_idx(d.path, "train", 12, 3, 4, gz);
    write_idx(d.path, "t10k", 5, 3, 4, gz);
    auto train = open_dataset("mnist", d.str(), Split::Train);
    auto test = open_dataset("fashion-mnist", d.str(), Split::Test);
    CHECK(train->size() == 12);
    CHECK(test->size() == 5);
    CHECK(train->label(11) == 1);
    Tensor img = train->image(2);
    CHECK(img.shape() == Shape{1, 3, 4});
    std::vector<double> v = img.to_vector();
    for (int k = 0; k < 12; ++k) CHECK(v[size_t(k)] == double((2 * 7 + k) % 256));
    CHECK(test->class_names()[9] == "ankle-boot");
  }
}

TEST_CASE("datasets: IDX errors name the file and the sizes") {
  TempDir d("idxbad");
  write_idx(d.path, "train", 4, 2, 2, false, 3);  // truncated images
  expect_error([&] { open_dataset("mnist", d.str(), Split::Train); }, "expected 32 bytes for 4 images of 2x2, found 29 (truncated?)");
  write_file(d.path / "train-images-idx3-ubyte", be32(0x801) + std::string(12, '\0'));
  expect_error([&] { open_dataset("mnist", d.str(), Split::Train); }, "bad magic 0x801");
  write_idx(d.path, "train", 4, 2, 2, false);
  write_file(d.path / "train-labels-idx1-ubyte", be32(0x801) + be32(3) + std::string(3, '\1'));
  expect_error([&] { open_dataset("mnist", d.str(), Split::Train); }, "3 labels for 4 images");
  write_file(d.path / "train-images-idx3-ubyte.gz", "not gzip at all");
  fs::remove(d.path / "train-images-idx3-ubyte");
  write_idx(d.path, "t10k", 2, 2, 2, false);
  expect_error([&] { open_dataset("mnist", d.str(), Split::Train); }, "train-images-idx3-ubyte.gz");
  expect_error([&] { open_dataset("mnist", (d.path / "nope").string(), Split::Train); }, "does not exist");
  expect_error([&] { open_dataset("imagenet", d.str(), Split::Train); }, "unknown dataset 'imagenet'");
  fs::remove(d.path / "t10k-labels-idx1-ubyte");
  expect_error([&] { open_dataset("mnist", d.str(), Split::Test); }, "missing t10k-labels-idx1-ubyte[.gz]");
}

TEST_CASE("datasets: CIFAR-10 and CIFAR-100 binary") {
  TempDir d("cifar");
  auto record = [](int label_bytes, int label, int seed) {
    std::string r;
    for (int b = 0; b < label_bytes; ++b) r += char(b == 0 ? label : 99);
    for (int k = 0; k < 3072; ++k) r += char((seed + k) % 251);
    return r;
  };
  for (int f = 1; f <= 5; ++f) write_file(d.path / ("data_batch_" + std::to_string(f) + ".bin"), record(1, f, f) + record(1, 9, 10 + f));
  write_file(d.path / "test_batch.bin", record(1, 3, 0));
  auto train = open_dataset("cifar10", d.str(), Split::Train);
  CHECK(train->size() == 10);
  CHECK(train->label(2) == 2);  // file 2, record 0
  CHECK(train->label(3) == 9);
  Tensor img = train->image(3);  // file 2, record 1: seed 12
  CHECK(img.shape() == Shape{3, 32, 32});
  std::vector<double> v = img.to_vector();
  CHECK(v[0] == 12);
  CHECK(v[1024] == double((12 + 1024) % 251));  // the G plane
  CHECK(train->describe(3).find("data_batch_2.bin #1") != std::string::npos);
  CHECK(train->path(3).empty());  // records of a shared file: no per-image path (scores.csv leaves it empty)
  CHECK(open_dataset("cifar10", d.str(), Split::Test)->class_names()[0] == "airplane");

  write_file(d.path / "test_batch.bin", record(1, 3, 0).substr(0, 3000));
  expect_error([&] { open_dataset("cifar10", d.str(), Split::Test); }, "is not a multiple of the 3073-byte record");
  write_file(d.path / "test_batch.bin", record(1, 10, 0));
  expect_error([&] { open_dataset("cifar10", d.str(), Split::Test); }, "label 10 of record 0 is outside 0..9");

  write_file(d.path / "train.bin", record(2, 19, 1) + record(2, 4, 2));
  auto c100 = open_dataset("cifar100", d.str(), Split::Train);
  CHECK(c100->size() == 2);
  CHECK(c100->label(0) == 19);  // the coarse label (first byte)
  CHECK(c100->class_names().size() == 20);
  CHECK(c100->image(1).to_vector()[5] == double((2 + 5) % 251));
}

TEST_CASE("datasets: STL-10 binary (column-major images, labels 1..10)") {
  TempDir d("stl");
  std::string x;
  const int n = 2;
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c)
      for (int col = 0; col < 96; ++col)
        for (int row = 0; row < 96; ++row) x += char((i + c * 3 + row * 5 + col) % 256);
  write_file(d.path / "train_X.bin", x);
  write_file(d.path / "train_y.bin", std::string{char(1), char(10)});
  auto ds = open_dataset("stl10", d.str(), Split::Train);
  CHECK(ds->size() == 2);
  CHECK(ds->label(0) == 0);
  CHECK(ds->label(1) == 9);
  std::vector<double> v = ds->image(1).to_vector();  // (C, H, W): element (c=2, y=7, x=3)
  CHECK(v[size_t((2 * 96 + 7) * 96 + 3)] == double((1 + 2 * 3 + 7 * 5 + 3) % 256));
  write_file(d.path / "train_y.bin", std::string{char(1), char(11)});
  expect_error([&] { open_dataset("stl10", d.str(), Split::Train); }, "label 11 of image 1 is outside 1..10");
  write_file(d.path / "train_y.bin", std::string{char(1)});
  expect_error([&] { open_dataset("stl10", d.str(), Split::Train); }, "1 labels for 2 images");
}

TEST_CASE("datasets: Debian's Fashion-MNIST, when installed") {
  if (!fs::exists(kDefaultFashionMnistDir)) {
    MESSAGE("dataset-fashion-mnist is not installed: skipping the real-data check");
    return;
  }
  auto train = open_dataset("fashion-mnist", kDefaultFashionMnistDir, Split::Train);
  auto test = open_dataset("fashion-mnist", kDefaultFashionMnistDir, Split::Test);
  CHECK(train->size() == 60000);
  CHECK(test->size() == 10000);
  CHECK(train->image(0).shape() == Shape{1, 28, 28});
  std::vector<int> counts(10);
  for (int64_t i = 0; i < test->size(); ++i) ++counts[size_t(test->label(i))];
  for (int c : counts) CHECK(c == 1000);
}
