// tests/apps/extract_check.h: extract_to_file against the backbone's forward on the whole set at once, on
// one device (tests/apps/test_extract.cpp: the CPU; tests/cuda/test_cuda_extract.cpp: CUDA).
//
// The dataset is in memory: n random u8 gray images with labels 0..4. The samples are taken in a shuffled
// order and in batches that do not divide n, so the pipelined loop of extract_to_file (batch i's forward
// queued while batch i-1 is written and batch i+1 is loaded) must put every row where it belongs: rows
// written to the wrong place, a batch written twice or not at all, the last partial batch lost, or labels
// from another batch all fail here.
#pragma once

#include <doctest/doctest.h>

#include <numeric>
#include <string>
#include <vector>

#include "apps/datasets.h"
#include "apps/extract.h"
#include "autograd/ops.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "tests/testing/gradcheck.h"
#include "tests/testing/temp_dir.h"
#include "vit/preprocess.h"

namespace sanf::testing {

class MemoryDataset : public apps::Dataset {
 public:
  MemoryDataset(int64_t n, int64_t size, uint64_t seed) {
    Generator gen(seed);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> px(size_t(size * size));
      for (double& v : px) v = double(gen.next_u64() % 256);
      images_.push_back(Tensor::from_vector(px, {1, size, size}, DType::U8));
      labels_.push_back(i % 5);
    }
  }
  int64_t size() const override { return int64_t(images_.size()); }
  int64_t label(int64_t i) const override { return labels_[size_t(i)]; }
  Tensor image(int64_t i) const override { return images_[size_t(i)]; }
  const std::vector<std::string>& class_names() const override { return names_; }

 private:
  std::vector<Tensor> images_;
  std::vector<int64_t> labels_;
  std::vector<std::string> names_ = {"a", "b", "c", "d", "e"};
};

// Extracts 11 shuffled samples of a 13-image set in batches of `batch` on `device` and compares the file
// with one forward of the same samples (on the same device), row by row.
inline void check_extraction(Device device, int64_t batch) {
  INFO("device ", device_name(device), ", batch ", batch);
  TempDir tmp("extract_check");
  const MemoryDataset ds(13, 16, 7);
  apps::BackboneOptions bo;
  bo.spec = "random:vit-tiny", bo.image_size = 16, bo.patch_size = 8, bo.seed = 3, bo.device = device;
  auto model = apps::open_backbone(bo);
  std::vector<int64_t> indices(13);
  std::iota(indices.begin(), indices.end(), 0);
  Generator gen(9);
  const std::vector<int64_t> perm = gen.permutation(13);
  std::vector<int64_t> picked;
  for (int k = 0; k < 11; ++k) picked.push_back(perm[size_t(k)]);
  apps::ExtractOptions eo;
  eo.batch_size = batch, eo.progress = false;
  const std::string path = tmp / "f.safetensors";
  apps::extract_to_file(*model, ds, picked, path, {{"test", "yes"}}, eo);

  std::vector<Tensor> images;
  for (int64_t i : picked) images.push_back(ds.image(i));
  Tensor all;
  {
    NoGradGuard no_grad;
    all = to(model->forward(to(vit::preprocess(images, model->config()), device)), Device::CPU);  // (11, 1+N, D)
  }
  const int64_t N = model->config().num_patches();
  SafetensorsFile f = SafetensorsFile::open(path);
  CHECK(f.metadata().at("test") == "yes");
  const Tensor cls = f.get("cls"), patches = f.get("patches");
  CHECK(cls.shape() == Shape{11, all.shape()[2]});
  CHECK(patches.shape() == Shape{11, N, all.shape()[2]});
  // A batch's composition may change the GEMM blocking (on CUDA, cuBLAS's choice of kernel for another M),
  // so the rows agree to f32 rounding through 12 blocks, not bit for bit.
  const double tol = device == Device::CPU ? 1e-5 : 1e-4;
  SANF_CHECK_CLOSE(cls, contiguous(select(all, 1, 0)), tol, tol);
  SANF_CHECK_CLOSE(patches, contiguous(narrow(all, 1, 1, N)), tol, tol);
  const std::vector<double> labels = f.get("labels").to_vector(), rows = f.get("indices").to_vector();
  for (size_t k = 0; k < picked.size(); ++k) {
    CHECK(rows[k] == double(picked[k]));
    CHECK(labels[k] == double(ds.label(picked[k])));
  }
}

}  // namespace sanf::testing
