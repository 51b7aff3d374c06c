// apps/datasets.cpp: IDX, CIFAR-10/100 and STL-10 binary readers; image folders (any, MVTec AD).
//
// IDX files are small (MNIST-sized) and often gzipped, so they are decompressed into memory once. CIFAR and
// STL-10 files are read record by record with pread, so only the images asked for are in memory. Image
// folders are listed when opened and each file is decoded when its image is asked for.
#include "apps/datasets.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fmt/format.h>
#include <set>

#include "apps/image_io.h"

namespace sanf::apps {

namespace fs = std::filesystem;

const char* split_name(Split s) { return s == Split::Train ? "train" : "test"; }

std::string Dataset::describe(int64_t i) const { return cat("sample ", i); }
Tensor Dataset::mask(int64_t) const { SANF_FAIL("this dataset has no ground-truth masks (only mvtec has them)"); }

std::vector<std::string> dataset_names() {
  return {"fashion-mnist", "mnist", "cifar10", "cifar100", "stl10", "folder", "mvtec"};
}

namespace {

// ---- file helpers --------------------------------------------------------------------------------------

// A file opened for random reads; closed on destruction.
class File {
 public:
  explicit File(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    SANF_CHECK(fd_ >= 0, path, ": cannot open: ", std::strerror(errno));
    struct stat st {};
    SANF_CHECK(::fstat(fd_, &st) == 0, path, ": cannot stat: ", std::strerror(errno));
    size_ = st.st_size;
  }
  ~File() {
    if (fd_ >= 0) ::close(fd_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  int64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  void read(int64_t offset, void* out, int64_t n) const {
    char* p = static_cast<char*>(out);
    while (n > 0) {
      ssize_t got = ::pread(fd_, p, size_t(n), offset);
      SANF_CHECK(got > 0, path_, ": read failed at byte ", offset, got == 0 ? ": unexpected end of file" : ": ",
                 got == 0 ? "" : std::strerror(errno));
      p += got, offset += got, n -= got;
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  int64_t size_ = 0;
};

// The whole content of a file, gunzipped when it is gzip (zlib reads plain files transparently).
std::vector<unsigned char> read_maybe_gzip(const std::string& path) {
  gzFile gz = gzopen(path.c_str(), "rb");
  SANF_CHECK(gz != nullptr, path, ": cannot open: ", std::strerror(errno));
  std::vector<unsigned char> out;
  std::array<unsigned char, 1 << 16> buf;
  for (;;) {
    int n = gzread(gz, buf.data(), unsigned(buf.size()));
    if (n < 0) {
      int err = 0;
      std::string msg = gzerror(gz, &err);
      gzclose(gz);
      SANF_FAIL(path, ": corrupt gzip data: ", msg);
    }
    if (n == 0) break;
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  }
  gzclose(gz);
  return out;
}

// The first existing path among dir/name and dir/name.gz.
std::string find_file(const std::string& dir, const std::string& name, bool allow_gz) {
  for (const std::string& cand : allow_gz ? std::vector<std::string>{name, name + ".gz"} : std::vector<std::string>{name})
    if (fs::exists(fs::path(dir) / cand)) return (fs::path(dir) / cand).string();
  SANF_FAIL(dir, ": missing ", name, allow_gz ? "[.gz]" : "");
}

uint32_t be32(const unsigned char* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

std::vector<std::string> read_names(const std::string& path, std::vector<std::string> fallback) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return fallback;
  std::vector<std::string> names;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    std::string s(line);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    if (!s.empty()) names.push_back(s);
  }
  std::fclose(f);
  return names.size() == fallback.size() ? names : fallback;
}

// ---- IDX (MNIST, Fashion-MNIST) --------------------------------------------------------------------------

class IdxDataset : public Dataset {
 public:
  IdxDataset(const std::string& dir, Split split, std::vector<std::string> names) : names_(std::move(names)) {
    const std::string stem = split == Split::Train ? "train" : "t10k";
    const std::string ipath = find_file(dir, stem + "-images-idx3-ubyte", true);
    const std::string lpath = find_file(dir, stem + "-labels-idx1-ubyte", true);
    images_ = read_maybe_gzip(ipath);
    std::vector<unsigned char> labels = read_maybe_gzip(lpath);
    SANF_CHECK(images_.size() >= 16, ipath, ": ", images_.size(), " bytes is too short for an IDX image header");
    SANF_CHECK(be32(images_.data()) == 0x00000803u, ipath, ": bad magic 0x", std::hex, be32(images_.data()),
               ", expected 0x00000803 (IDX u8 3-D)");
    n_ = be32(&images_[4]), h_ = be32(&images_[8]), w_ = be32(&images_[12]);
    SANF_CHECK(n_ > 0 && h_ > 0 && w_ > 0 && h_ <= 4096 && w_ <= 4096, ipath, ": implausible dims ", n_, " x ", h_,
               " x ", w_);
    const int64_t want = 16 + n_ * h_ * w_;
    SANF_CHECK(int64_t(images_.size()) == want, ipath, ": expected ", want, " bytes for ", n_, " images of ", h_, "x",
               w_, ", found ", images_.size(), int64_t(images_.size()) < want ? " (truncated?)" : "");
    SANF_CHECK(labels.size() >= 8 && be32(labels.data()) == 0x00000801u, lpath,
               ": bad IDX label header (expected magic 0x00000801)");
    SANF_CHECK(int64_t(be32(&labels[4])) == n_, lpath, ": ", be32(&labels[4]), " labels for ", n_, " images in ", ipath);
    SANF_CHECK(int64_t(labels.size()) == 8 + n_, lpath, ": expected ", 8 + n_, " bytes, found ", labels.size(),
               int64_t(labels.size()) < 8 + n_ ? " (truncated?)" : "");
    labels_.assign(labels.begin() + 8, labels.end());
    for (int64_t i = 0; i < n_; ++i)
      SANF_CHECK(labels_[size_t(i)] < names_.size(), lpath, ": label ", int(labels_[size_t(i)]), " of sample ", i,
                 " is outside 0..", names_.size() - 1);
    path_ = ipath;
  }
  int64_t size() const override { return n_; }
  int64_t label(int64_t i) const override { return labels_[size_t(i)]; }
  Tensor image(int64_t i) const override {
    Tensor t = Tensor::empty({1, h_, w_}, DType::U8);
    std::memcpy(t.data_ptr(), &images_[size_t(16 + i * h_ * w_)], size_t(h_ * w_));
    return t;
  }
  const std::vector<std::string>& class_names() const override { return names_; }
  std::string describe(int64_t i) const override { return cat(path_, " #", i); }

 private:
  std::vector<unsigned char> images_, labels_;
  std::vector<std::string> names_;
  std::string path_;
  int64_t n_ = 0, h_ = 0, w_ = 0;
};

// ---- fixed-size binary records (CIFAR-10/100, STL-10) ------------------------------------------------------

// Images stored as fixed-size records across one or more files; labels read up front.
class RecordDataset : public Dataset {
 public:
  struct Part {
    std::unique_ptr<File> file;
    int64_t count = 0;
  };
  int64_t size() const override { return int64_t(labels_.size()); }
  int64_t label(int64_t i) const override { return labels_[size_t(i)]; }
  const std::vector<std::string>& class_names() const override { return names_; }
  std::string describe(int64_t i) const override {
    auto [p, j] = locate(i);
    return cat(parts_[p].file->path(), " #", j);
  }

 protected:
  std::pair<size_t, int64_t> locate(int64_t i) const {
    size_t p = 0;
    while (i >= parts_[p].count) i -= parts_[p++].count;
    return {p, i};
  }
  std::vector<Part> parts_;
  std::vector<int64_t> labels_;
  std::vector<std::string> names_;
};

const std::vector<std::string> kCifar10Names = {"airplane", "automobile", "bird", "cat", "deer",
                                                "dog", "frog", "horse", "ship", "truck"};
const std::vector<std::string> kCifar100Coarse = {
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables", "household_electrical_devices",
    "household_furniture", "insects", "large_carnivores", "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes", "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates",
    "people", "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2"};

// CIFAR: records of `label_bytes` + 3072 image bytes; the label used is byte `label_at`.
class CifarDataset : public RecordDataset {
 public:
  CifarDataset(const std::string& dir, const std::vector<std::string>& files, int label_bytes, int label_at,
               std::vector<std::string> names)
      : label_bytes_(label_bytes) {
    names_ = std::move(names);
    const int64_t rec = label_bytes + 3072;
    for (const std::string& f : files) {
      Part part{std::make_unique<File>(find_file(dir, f, false)), 0};
      const File& file = *part.file;
      SANF_CHECK(file.size() > 0 && file.size() % rec == 0, file.path(), ": size ", file.size(),
                 " is not a multiple of the ", rec, "-byte record (truncated?)");
      part.count = file.size() / rec;
      std::vector<unsigned char> buf(size_t(file.size()));
      file.read(0, buf.data(), file.size());  // one pass for the labels (and a check of every one)
      for (int64_t j = 0; j < part.count; ++j) {
        int64_t l = buf[size_t(j * rec + label_at)];
        SANF_CHECK(l < int64_t(names_.size()), file.path(), ": label ", l, " of record ", j, " is outside 0..",
                   names_.size() - 1);
        labels_.push_back(l);
      }
      parts_.push_back(std::move(part));
    }
  }
  Tensor image(int64_t i) const override {
    auto [p, j] = locate(i);
    Tensor t = Tensor::empty({3, 32, 32}, DType::U8);  // stored as R, G, B planes: already (C, H, W)
    parts_[p].file->read(j * (label_bytes_ + 3072) + label_bytes_, t.data_ptr(), 3072);
    return t;
  }

 private:
  int label_bytes_;
};

// STL-10: each image is 3 x 96 x 96 in column-major order ([c][x][y]); labels are 1..10 in a separate file.
class Stl10Dataset : public RecordDataset {
 public:
  Stl10Dataset(const std::string& dir, Split split) {
    const std::string stem = split == Split::Train ? "train" : "test";
    names_ = read_names((fs::path(dir) / "class_names.txt").string(),
                        {"airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"});
    Part part{std::make_unique<File>(find_file(dir, stem + "_X.bin", false)), 0};
    File ly(find_file(dir, stem + "_y.bin", false));
    const int64_t rec = 3 * 96 * 96;
    SANF_CHECK(part.file->size() > 0 && part.file->size() % rec == 0, part.file->path(), ": size ",
               part.file->size(), " is not a multiple of the ", rec, "-byte image (truncated?)");
    part.count = part.file->size() / rec;
    SANF_CHECK(ly.size() == part.count, ly.path(), ": ", ly.size(), " labels for ", part.count, " images in ",
               part.file->path());
    std::vector<unsigned char> labels(size_t(ly.size()));
    ly.read(0, labels.data(), ly.size());
    for (int64_t j = 0; j < part.count; ++j) {
      SANF_CHECK(labels[size_t(j)] >= 1 && labels[size_t(j)] <= 10, ly.path(), ": label ", int(labels[size_t(j)]),
                 " of image ", j, " is outside 1..10");
      labels_.push_back(labels[size_t(j)] - 1);
    }
    parts_.push_back(std::move(part));
  }
  Tensor image(int64_t i) const override {
    std::vector<unsigned char> raw(3 * 96 * 96);
    parts_[0].file->read(i * int64_t(raw.size()), raw.data(), int64_t(raw.size()));
    Tensor t = Tensor::empty({3, 96, 96}, DType::U8);
    auto* out = t.data<uint8_t>();
    for (int c = 0; c < 3; ++c)
      for (int x = 0; x < 96; ++x)
        for (int y = 0; y < 96; ++y) out[(c * 96 + y) * 96 + x] = raw[size_t((c * 96 + x) * 96 + y)];
    return t;
  }
};

// ---- image folders (any folder of class sub-directories, MVTec AD) -----------------------------------------

bool hidden(const std::string& name) { return name.empty() || name[0] == '.'; }

bool is_image_name(const std::string& name) {
  const size_t dot = name.rfind('.');
  if (hidden(name) || dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext == "png" || ext == "jpg" || ext == "jpeg";
}

// The sorted names of the entries of `dir` that are directories (want_dirs) or image files (!want_dirs),
// hidden ones left out. Symbolic links count as what they point to.
std::vector<std::string> list_dir(const fs::path& dir, bool want_dirs) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  SANF_CHECK(!ec, dir.string(), ": cannot list: ", ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    SANF_CHECK(!ec, dir.string(), ": cannot list: ", ec.message());
    const std::string name = it->path().filename().string();
    std::error_code ec2;
    if (hidden(name)) continue;
    if (want_dirs ? it->is_directory(ec2) : (it->is_regular_file(ec2) && is_image_name(name))) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Image files listed when opened and decoded on demand; labels are indices into names_.
class ImageFilesDataset : public Dataset {
 public:
  ImageFilesDataset(const std::string& dir, std::vector<std::string> names, std::vector<std::string> paths,
                    std::vector<int64_t> labels, const DatasetOptions& options)
      : names_(std::move(names)), paths_(std::move(paths)), labels_(std::move(labels)) {
    if (options.skip_corrupt) drop_corrupt(dir);
  }
  int64_t size() const override { return int64_t(paths_.size()); }
  int64_t label(int64_t i) const override { return labels_[size_t(i)]; }
  Tensor image(int64_t i) const override { return read_image(paths_[size_t(i)]); }
  const std::vector<std::string>& class_names() const override { return names_; }
  std::string describe(int64_t i) const override { return paths_[size_t(i)]; }
  std::string path(int64_t i) const override { return paths_[size_t(i)]; }
  int64_t skipped() const override { return skipped_; }
  bool has_masks() const override { return !mask_root_.empty(); }
  // MVTec's layout: <root>/<class>/<name>.<ext> has its mask at <mask_root>/<class>/<name>_mask.png; the
  // normal class (label 0) has none.
  Tensor mask(int64_t i) const override {
    if (!has_masks()) return Dataset::mask(i);
    if (labels_[size_t(i)] == 0) return Tensor();
    const fs::path img(paths_[size_t(i)]);
    const fs::path m = fs::path(mask_root_) / img.parent_path().filename() / (img.stem().string() + "_mask.png");
    SANF_CHECK(fs::exists(m), m.string(), ": the ground-truth mask of ", img.string(), " is missing");
    const Tensor t = read_image(m.string());
    SANF_CHECK(t.size(0) == 1, m.string(), ": a mask must be a grey image, got ", t.size(0), " channels");
    return t;
  }
  void set_mask_root(std::string root) { mask_root_ = std::move(root); }

 private:
  // Decode every file once (in parallel: each image is independent) and keep those that decode.
  void drop_corrupt(const std::string& dir) {
    const int64_t n = int64_t(paths_.size());
    std::vector<std::string> errors(static_cast<size_t>(n));
    std::vector<std::exception_ptr> other(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic)
    for (int64_t i = 0; i < n; ++i) {
      try {
        (void)read_image(paths_[size_t(i)]);
      } catch (const Error& e) {
        errors[size_t(i)] = e.what();
      } catch (...) {  // not a decoding failure (out of memory...): passed on after the loop
        other[size_t(i)] = std::current_exception();
      }
    }
    for (const std::exception_ptr& e : other)
      if (e) std::rethrow_exception(e);
    std::vector<std::string> paths;
    std::vector<int64_t> labels;
    std::string first;
    for (int64_t i = 0; i < n; ++i) {
      if (errors[size_t(i)].empty()) {
        paths.push_back(paths_[size_t(i)]);
        labels.push_back(labels_[size_t(i)]);
      } else if (skipped_++ == 0) {
        first = errors[size_t(i)];
      }
    }
    paths_ = std::move(paths), labels_ = std::move(labels);
    if (skipped_ > 0)
      fmt::print(stderr, "sanf: skipped {} corrupt image{} of {} in {}; first: {}\n", skipped_,
                 skipped_ == 1 ? "" : "s", n, dir, first);
    SANF_CHECK(!paths_.empty(), dir, ": all ", n, " images are corrupt; first: ", first);
  }

  std::vector<std::string> names_, paths_;
  std::vector<int64_t> labels_;
  int64_t skipped_ = 0;
  std::string mask_root_;
};

// Appends the images of split_dir/<names[k]>/ for each k whose directory exists, with label k.
void add_class_dirs(const fs::path& split_dir, const std::vector<std::string>& names, std::vector<std::string>& paths,
                    std::vector<int64_t>& labels) {
  for (size_t k = 0; k < names.size(); ++k) {
    const fs::path cdir = split_dir / names[k];
    if (!fs::is_directory(cdir)) continue;
    for (const std::string& f : list_dir(cdir, false)) {
      paths.push_back((cdir / f).string());
      labels.push_back(int64_t(k));
    }
  }
}

std::unique_ptr<Dataset> open_folder(const std::string& dir, Split split, const DatasetOptions& options) {
  const fs::path root(dir), sdir = root / split_name(split);
  SANF_CHECK(fs::is_directory(sdir), sdir.string(), ": directory missing (the folder dataset reads <dir>/",
             split_name(split), "/<class>/*.png|jpg)");
  std::set<std::string> classes;
  for (const char* s : {"train", "test"})
    if (fs::is_directory(root / s))
      for (const std::string& c : list_dir(root / s, true)) classes.insert(c);
  std::vector<std::string> names(classes.begin(), classes.end());
  SANF_CHECK(!list_dir(sdir, true).empty(), sdir.string(), ": no class sub-directories (expected ", sdir.string(),
             "/<class>/*.png|jpg)");
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
  add_class_dirs(sdir, names, paths, labels);
  SANF_CHECK(!paths.empty(), sdir.string(),
             ": no PNG or JPEG files (*.png, *.jpg, *.jpeg) in its class sub-directories");
  return std::make_unique<ImageFilesDataset>(sdir.string(), std::move(names), std::move(paths), std::move(labels),
                                             options);
}

std::unique_ptr<Dataset> open_mvtec(const std::string& dir, Split split, const DatasetOptions& options) {
  const fs::path root(dir), test = root / "test";
  std::vector<std::string> names = {"good"};
  if (fs::is_directory(test))
    for (const std::string& c : list_dir(test, true))
      if (c != "good") names.push_back(c);
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
  fs::path sdir;
  if (split == Split::Train) {
    sdir = root / "train" / "good";
    SANF_CHECK(fs::is_directory(sdir), sdir.string(),
               ": directory missing (the data directory must be one MVTec AD category, e.g. mvtec_ad/bottle, with "
               "train/good/ and test/<good|defect>/)");
    for (const std::string& f : list_dir(sdir, false)) {
      paths.push_back((sdir / f).string());
      labels.push_back(0);
    }
  } else {
    sdir = test;
    SANF_CHECK(fs::is_directory(sdir), sdir.string(),
               ": directory missing (the data directory must be one MVTec AD category, e.g. mvtec_ad/bottle, with "
               "train/good/ and test/<good|defect>/)");
    add_class_dirs(sdir, names, paths, labels);
  }
  SANF_CHECK(!paths.empty(), sdir.string(), ": no PNG or JPEG files (*.png, *.jpg, *.jpeg)",
             split == Split::Test ? " in its class sub-directories" : "");
  auto ds = std::make_unique<ImageFilesDataset>(sdir.string(), std::move(names), std::move(paths), std::move(labels),
                                                options);
  if (split == Split::Test) ds->set_mask_root((root / "ground_truth").string());
  return ds;
}

// Image files given one by one or found under directories; no classes.
class LooseImagesDataset : public Dataset {
 public:
  explicit LooseImagesDataset(std::vector<std::string> paths) : paths_(std::move(paths)) {}
  int64_t size() const override { return int64_t(paths_.size()); }
  int64_t label(int64_t) const override { return -1; }
  Tensor image(int64_t i) const override { return read_image(paths_[size_t(i)]); }
  const std::vector<std::string>& class_names() const override { return names_; }
  std::string describe(int64_t i) const override { return paths_[size_t(i)]; }

 private:
  std::vector<std::string> paths_, names_;
};

class FirstImages : public Dataset {
 public:
  FirstImages(std::unique_ptr<Dataset> ds, int64_t n) : ds_(std::move(ds)), n_(n) {}
  int64_t size() const override { return n_; }
  int64_t label(int64_t i) const override { return ds_->label(i); }
  Tensor image(int64_t i) const override { return ds_->image(i); }
  const std::vector<std::string>& class_names() const override { return ds_->class_names(); }
  std::string describe(int64_t i) const override { return ds_->describe(i); }
  int64_t skipped() const override { return ds_->skipped(); }
  bool has_masks() const override { return ds_->has_masks(); }
  Tensor mask(int64_t i) const override { return ds_->mask(i); }

 private:
  std::unique_ptr<Dataset> ds_;
  int64_t n_;
};

// The image files under `dir`, recursively, in sorted path order (hidden entries left out).
void find_images(const fs::path& dir, std::vector<std::string>& out) {
  for (const std::string& f : list_dir(dir, false)) out.push_back((dir / f).string());
  for (const std::string& d : list_dir(dir, true)) find_images(dir / d, out);
}

}  // namespace

std::unique_ptr<Dataset> open_image_files(const std::vector<std::string>& inputs) {
  std::vector<std::string> paths;
  for (const std::string& in : inputs) {
    std::error_code ec;
    const fs::file_status st = fs::status(in, ec);
    SANF_CHECK(!ec && fs::exists(st), in, ": no such file or directory");
    if (fs::is_directory(st)) {
      std::vector<std::string> found;
      find_images(in, found);
      std::sort(found.begin(), found.end());
      SANF_CHECK(!found.empty(), in, ": no PNG or JPEG files (*.png, *.jpg, *.jpeg) in it or below it");
      paths.insert(paths.end(), found.begin(), found.end());
    } else {
      paths.push_back(in);
    }
  }
  SANF_CHECK(!paths.empty(), "no images given");
  return std::make_unique<LooseImagesDataset>(std::move(paths));
}

int64_t resolve_class(const std::string& given, const std::vector<std::string>& names, const std::string& what) {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == given) return int64_t(i);
  auto is_digit = [](unsigned char c) { return c >= '0' && c <= '9'; };
  if (!given.empty() && given.size() <= 9 && std::all_of(given.begin(), given.end(), is_digit)) {
    const int64_t i = std::stoll(given);
    if (i >= 0 && i < int64_t(names.size())) return i;
  }
  std::string known;
  for (size_t i = 0; i < names.size(); ++i) known += cat(i ? ", " : "", i, "=", names[i]);
  SANF_FAIL(what, ": unknown class '", given, "'; the classes are ", known);
}

std::unique_ptr<Dataset> first_images(std::unique_ptr<Dataset> ds, int64_t n) {
  SANF_CHECK(n >= 0 && n <= ds->size(), "first_images: ", n, " of ", ds->size(), " images");
  return std::make_unique<FirstImages>(std::move(ds), n);
}

std::unique_ptr<Dataset> open_dataset(const std::string& name, const std::string& dir, Split split) {
  return open_dataset(name, dir, split, DatasetOptions{});
}

std::unique_ptr<Dataset> open_dataset(const std::string& name, const std::string& dir, Split split,
                                      const DatasetOptions& options) {
  SANF_CHECK(fs::is_directory(dir), "dataset directory '", dir, "' does not exist");
  if (name == "folder") return open_folder(dir, split, options);
  if (name == "mvtec") return open_mvtec(dir, split, options);
  if (name == "fashion-mnist")
    return std::make_unique<IdxDataset>(dir, split, std::vector<std::string>{"t-shirt", "trouser", "pullover", "dress",
                                                                             "coat", "sandal", "shirt", "sneaker",
                                                                             "bag", "ankle-boot"});
  if (name == "mnist")
    return std::make_unique<IdxDataset>(dir, split,
                                        std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
  if (name == "cifar10") {
    std::vector<std::string> files = split == Split::Train
                                         ? std::vector<std::string>{"data_batch_1.bin", "data_batch_2.bin",
                                                                    "data_batch_3.bin", "data_batch_4.bin",
                                                                    "data_batch_5.bin"}
                                         : std::vector<std::string>{"test_batch.bin"};
    return std::make_unique<CifarDataset>(dir, files, 1, 0,
                                          read_names((fs::path(dir) / "batches.meta.txt").string(), kCifar10Names));
  }
  if (name == "cifar100")
    return std::make_unique<CifarDataset>(dir, std::vector<std::string>{split == Split::Train ? "train.bin" : "test.bin"},
                                          2, 0,
                                          read_names((fs::path(dir) / "coarse_label_names.txt").string(), kCifar100Coarse));
  if (name == "stl10") return std::make_unique<Stl10Dataset>(dir, split);
  std::string known;
  for (const std::string& n : dataset_names()) known += (known.empty() ? "" : ", ") + n;
  SANF_FAIL("unknown dataset '", name, "' (known: ", known, ")");
}

}  // namespace sanf::apps
