// apps/datasets.h: the image datasets of the one-class protocol, read without Python.
//
// A Dataset gives labels cheaply and images on demand (u8, (C, H, W)), so feature extraction can stream
// through a dataset in batches with memory that does not grow with its size. Each reader validates what it
// reads (magic numbers, record sizes, label ranges) and fails with the file, what it expected and what it
// found. Formats (../shared/SPEC.md §4):
//   fashion-mnist, mnist  IDX files, gzipped or not: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
//   cifar10               data_batch_1..5.bin / test_batch.bin: records of 1 label byte + 3072 bytes (R, G, B planes)
//   cifar100              train.bin / test.bin: coarse label, fine label, 3072 bytes; labels are the 20 coarse
//                         superclasses
//   stl10                 {train,test}_X.bin (96x96x3 per image, column-major) and {train,test}_y.bin (1..10)
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace sanf::apps {

enum class Split { Train, Test };
const char* split_name(Split s);

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual int64_t label(int64_t i) const = 0;
  virtual Tensor image(int64_t i) const = 0;  // u8 (C, H, W)
  virtual const std::vector<std::string>& class_names() const = 0;
  virtual std::string describe(int64_t i) const;  // where sample i comes from, for reports and errors
};

// name: fashion-mnist | mnist | cifar10 | cifar100 | stl10. Throws naming the directory and the file.
std::unique_ptr<Dataset> open_dataset(const std::string& name, const std::string& dir, Split split);
std::vector<std::string> dataset_names();

// Where Debian's dataset-fashion-mnist package installs the IDX files.
constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

}  // namespace sanf::apps
