// apps/datasets.h: the image datasets of the one-class protocol, read without Python.
//
// A Dataset gives labels cheaply and images on demand (u8, (C, H, W)), so feature extraction can stream
// through a dataset in batches with memory that does not grow with its size. Each reader validates what it
// reads (magic numbers, record sizes, label ranges) and fails with the file, what it expected and what it
// found. Formats:
//   fashion-mnist, mnist  IDX files, gzipped or not: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
//   cifar10               data_batch_1..5.bin / test_batch.bin: records of 1 label byte + 3072 bytes (R, G, B planes)
//   cifar100              train.bin / test.bin: coarse label, fine label, 3072 bytes; labels are the 20 coarse
//                         superclasses
//   stl10                 {train,test}_X.bin (96x96x3 per image, column-major) and {train,test}_y.bin (1..10)
//   folder                any image folder: <dir>/train/<class>/*, <dir>/test/<class>/* (e.g. CatsVsDogs).
//                         class_names = the sorted union of the class sub-directories of train/ and test/ (so
//                         both splits number classes alike); label = index in that list. Samples are ordered
//                         by class, then by file name.
//   mvtec                 one MVTec AD category: <dir>/train/good/*, <dir>/test/{good,<defect>...}/*;
//                         class_names = ["good", defects in sorted order], so label 0 is the normal class.
//                         Samples are ordered by class, then by file name. The test split has masks: the
//                         mask of test/<defect>/<name>.<ext> is ground_truth/<defect>/<name>_mask.png.
// folder and mvtec list file names when opened and decode each image (apps/image_io.h: PNG or JPEG, chosen
// by content) only when image(i) asks for it; images may differ in size and in channels (1 or 3). Only files
// named *.png, *.jpg or *.jpeg (any case) are listed: files with other extensions, hidden files and
// directories (names starting with '.') and files directly under train/ or test/ are ignored. A missing
// split directory, or one with no images, is an error naming it. A corrupt image is an error naming the
// file when image(i) reads it, unless DatasetOptions::skip_corrupt is set (see there).
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
  // The image file sample i is read from (folder, mvtec: describe(i), the path under the dataset directory as
  // opened); "" for the binary formats, whose samples are records of shared files ("test_batch.bin #17").
  virtual std::string path(int64_t) const { return {}; }
  virtual int64_t skipped() const { return 0; }    // corrupt files left out (DatasetOptions::skip_corrupt)
  // Ground-truth masks of the anomalous pixels (mvtec's ground_truth/): has_masks() says whether the dataset
  // can have them; mask(i) is u8 (1, H, W), nonzero = anomalous, or undefined for an image with no anomalous
  // pixel (a normal one). A defect image whose mask file is missing is an error naming the file expected.
  virtual bool has_masks() const { return false; }
  virtual Tensor mask(int64_t i) const;
};

struct DatasetOptions {
  // folder and mvtec only: decode every image once when opening, leave out (and count, see
  // Dataset::skipped) those that fail, and print one line on stderr with the count and the first bad file.
  // Without it a corrupt image is an error naming the file when image(i) reads it. The binary formats check
  // their files whole when opened and ignore this.
  bool skip_corrupt = false;
};

// name: fashion-mnist | mnist | cifar10 | cifar100 | stl10 | folder | mvtec. Throws naming the directory and
// the file.
std::unique_ptr<Dataset> open_dataset(const std::string& name, const std::string& dir, Split split);
std::unique_ptr<Dataset> open_dataset(const std::string& name, const std::string& dir, Split split,
                                      const DatasetOptions& options);
std::vector<std::string> dataset_names();

// A class given by name or by index into `names`; an unknown one is an error naming `what` (the dataset)
// and listing the classes.
int64_t resolve_class(const std::string& given, const std::vector<std::string>& names, const std::string& what);

// Loose images for `sanf predict`: each input is an image file (decoded by content, whatever its name) or a
// directory, searched recursively for *.png, *.jpg and *.jpeg files (any case; hidden files and directories
// left out), in sorted path order. Samples come in the order of the inputs. No classes: label(i) is -1
// and class_names() is empty; describe(i) is the file's path. A missing input, or a directory without
// images, is an error naming it. A corrupt file is an error (naming it) when image(i) reads it.
std::unique_ptr<Dataset> open_image_files(const std::vector<std::string>& inputs);

// The first n samples of `ds` (n <= ds->size()), everything else as `ds` has it.
std::unique_ptr<Dataset> first_images(std::unique_ptr<Dataset> ds, int64_t n);

// Where Debian's dataset-fashion-mnist package installs the IDX files.
constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

}  // namespace sanf::apps
