// core/tensor.cpp: Storage allocation, Tensor metadata, host-side reading and printing.
#include "core/tensor.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <mutex>
#include <sstream>

#include "core/block_cache.h"

namespace sanf {

// ---- host memory ---------------------------------------------------------------------------------
//
// Blocks of at least kHostCacheMin bytes come from a caching allocator (core/block_cache.h): freed
// blocks are kept by size class and reused, so a steady loop (a training step, a batch of extraction)
// makes no mmap/munmap calls and takes no fresh page faults, and its peak memory does not creep with
// glibc's adaptive mmap threshold. Smaller blocks go straight to malloc, whose own bins serve them without
// system calls. The cache keeps at most min(2 GiB, physical memory / 8); blocks past that are freed.
// Under AddressSanitizer a cached block is poisoned, so a use after free is still reported.
namespace {
#if defined(__SANITIZE_ADDRESS__)
#define SANF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANF_ASAN 1
#endif
#endif
#ifdef SANF_ASAN
extern "C" void __asan_poison_memory_region(void const volatile* addr, size_t size);
extern "C" void __asan_unpoison_memory_region(void const volatile* addr, size_t size);
void poison(void* p, size_t n) { __asan_poison_memory_region(p, n); }
void unpoison(void* p, size_t n) { __asan_unpoison_memory_region(p, n); }
#else
void poison(void*, size_t) {}
void unpoison(void*, size_t) {}
#endif

constexpr size_t kHostCacheMin = size_t(64) << 10;

size_t host_cache_cap() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const size_t ram = pages > 0 && page > 0 ? size_t(pages) * size_t(page) : size_t(0);
  return std::min<size_t>(size_t(2) << 30, ram / 8);
}

struct HostAllocator {
  std::mutex mu;
  BlockCache cache{host_cache_cap()};
  HostMemoryStats stats;
};
HostAllocator& host_allocator() {
  static HostAllocator* a = new HostAllocator();  // never destroyed: tensors may be freed during exit
  return *a;
}

void* host_alloc(size_t nbytes, size_t cls) {
  HostAllocator& h = host_allocator();
  {
    std::lock_guard<std::mutex> lock(h.mu);
    if (void* p = h.cache.take(cls)) {
      ++h.stats.cache_hits;
      h.stats.live_bytes += int64_t(cls);
      unpoison(p, nbytes);
      return p;
    }
  }
  void* p = std::aligned_alloc(64, cls);  // cls is a multiple of 512, as aligned_alloc wants
  if (p == nullptr) {  // the cached blocks may be what is missing: give them back and try once more
    host_memory_release_cache();
    p = std::aligned_alloc(64, cls);
  }
  SANF_CHECK(p != nullptr, "out of host memory allocating ", nbytes, " bytes");
  std::lock_guard<std::mutex> lock(h.mu);
  ++h.stats.system_allocs;
  h.stats.live_bytes += int64_t(cls);
  return p;
}

void host_free(void* p, size_t cls) noexcept {
  HostAllocator& h = host_allocator();
  bool kept;
  {
    std::lock_guard<std::mutex> lock(h.mu);
    h.stats.live_bytes -= int64_t(cls);
    kept = h.cache.put(p, cls);
    if (kept) poison(p, cls);  // under the lock: another thread may take the block as soon as it is released
  }
  if (!kept) std::free(p);
}
}  // namespace

HostMemoryStats host_memory_stats() {
  HostAllocator& h = host_allocator();
  std::lock_guard<std::mutex> lock(h.mu);
  HostMemoryStats s = h.stats;
  s.cached_bytes = int64_t(h.cache.bytes());
  return s;
}

void host_memory_release_cache() {
  HostAllocator& h = host_allocator();
  std::lock_guard<std::mutex> lock(h.mu);
  h.cache.release_all([](void* p, size_t cls) {
    unpoison(p, cls);
    std::free(p);
  });
}

// ---- Storage -------------------------------------------------------------------------------------

Storage::Storage(int64_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  SANF_CHECK(nbytes >= 0, "negative allocation of ", nbytes, " bytes");
  if (nbytes == 0) return;
  if (device == Device::CPU) {
    if (size_t(nbytes) >= kHostCacheMin) {
      const size_t cls = block_size_class(size_t(nbytes));
      data_ = host_alloc(size_t(nbytes), cls);
      release_ = [cls](void* p) { host_free(p, cls); };
      return;
    }
    size_t rounded = (size_t(nbytes) + 63) & ~size_t(63);  // aligned_alloc wants a multiple of the alignment
    data_ = std::aligned_alloc(64, rounded);
    SANF_CHECK(data_ != nullptr, "out of host memory allocating ", nbytes, " bytes");
    release_ = [](void* p) { std::free(p); };
  } else {
    data_ = cuda_alloc(nbytes);
    release_ = [](void* p) { cuda_free(p); };
  }
}

Storage::Storage(void* data, int64_t nbytes, Device device, std::function<void(void*)> release)
    : data_(data), nbytes_(nbytes), device_(device), release_(std::move(release)) {}

Storage::~Storage() {
  if (data_ && release_) release_(data_);
}

// ---- Tensor --------------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) SANF_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  SANF_CHECK(shape.size() <= size_t(kMaxDims), "tensors have at most ", kMaxDims, " dims, got ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(sanf::numel(shape) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, DType dtype, Device device) {
  SANF_CHECK(int64_t(values.size()) == sanf::numel(shape), "from_vector: ", values.size(),
             " values for shape ", shape_str(shape));
  Tensor t = empty(shape, dtype, Device::CPU);
  SANF_DISPATCH_ALL(dtype, "from_vector", [&] {
    auto* p = static_cast<scalar_t*>(t.data_ptr());
    for (size_t i = 0; i < values.size(); ++i) store_from_double(p, int64_t(i), values[i]);
  });
  return device == Device::CPU ? t : t.copy_to_device(device);
}

Tensor Tensor::from_blob(void* data, const Shape& shape, DType dtype, Device device,
                         std::function<void(void*)> release) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(data, sanf::numel(shape) * dtype_size(dtype), device, std::move(release));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int d) const { return shape()[normalize_dim(d, dim(), "size")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int i = dim() - 1; i >= 0; --i) {
    if (shape()[i] == 1) continue;  // the stride of a size-1 dim never matters
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

void* Tensor::data_ptr() const {
  return static_cast<char*>(impl().storage->data()) + offset() * dtype_size(dtype());
}

Tensor Tensor::as_strided(const Shape& shape, const Shape& strides, int64_t offset) const {
  SANF_CHECK(shape.size() == strides.size(), "as_strided: shape ", shape_str(shape), " and strides ",
             shape_str(strides), " differ in length");
  SANF_CHECK(shape.size() <= size_t(kMaxDims), "tensors have at most ", kMaxDims, " dims, got ", shape_str(shape));
  // The view must stay inside the storage: check its lowest and highest element.
  int64_t lo = offset, hi = offset;
  bool empty_view = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0) empty_view = true;
    if (strides[i] >= 0) hi += (shape[i] - 1) * strides[i];
    else lo += (shape[i] - 1) * strides[i];
  }
  int64_t cap = impl().storage->nbytes() / dtype_size(dtype());
  SANF_CHECK(empty_view || (lo >= 0 && hi < cap), "as_strided: view ", shape_str(shape), " strides ",
             shape_str(strides), " offset ", offset, " leaves a storage of ", cap, " elements");
  auto v = std::make_shared<TensorImpl>();
  v->storage = impl().storage;
  v->shape = shape;
  v->strides = strides;
  v->offset = offset;
  v->dtype = dtype();
  return Tensor(std::move(v));
}

std::vector<char> Tensor::to_bytes() const {
  const int64_t esize = dtype_size(dtype());
  std::vector<char> out(static_cast<size_t>(numel() * esize));
  if (out.empty()) return out;
  Tensor host = *this;
  if (device() != Device::CPU) {
    // Copy the whole storage to the host, then read the view there with the same strides.
    Tensor whole = Tensor::from_blob(storage()->data(), {storage()->nbytes() / esize}, dtype(), device(), nullptr);
    host = whole.copy_to_device(Device::CPU).as_strided(shape(), strides(), offset());
  }
  if (host.is_contiguous()) {
    std::memcpy(out.data(), host.data_ptr(), out.size());
    return out;
  }
  const char* base = static_cast<const char*>(host.storage()->data());
  std::vector<int64_t> idx(static_cast<size_t>(dim()), 0);
  int64_t off = host.offset();
  for (size_t n = 0; n < out.size(); n += size_t(esize)) {
    std::memcpy(&out[n], base + off * esize, size_t(esize));
    for (int d = dim() - 1; d >= 0; --d) {  // odometer increment over the view's multi-index
      off += strides()[size_t(d)];
      if (++idx[size_t(d)] < shape()[size_t(d)]) break;
      off -= strides()[size_t(d)] * shape()[size_t(d)];
      idx[size_t(d)] = 0;
    }
  }
  return out;
}

std::vector<double> Tensor::to_vector() const {
  std::vector<char> bytes = to_bytes();
  std::vector<double> out(static_cast<size_t>(numel()));
  SANF_DISPATCH_ALL(dtype(), "to_vector", [&] {
    const auto* p = reinterpret_cast<const scalar_t*>(bytes.data());
    for (size_t i = 0; i < out.size(); ++i) out[i] = load_as_double(p, int64_t(i));
  });
  return out;
}

double Tensor::item() const {
  SANF_CHECK(numel() == 1, "item(): tensor has ", numel(), " elements, shape ", shape_str(shape()));
  return to_vector()[0];
}

Tensor Tensor::copy_to_device(Device dev) const {
  SANF_CHECK(is_contiguous(), "copy_to_device needs a contiguous tensor, got strides ", shape_str(strides()));
  Tensor out = empty(shape(), dtype(), dev);
  int64_t nbytes = numel() * dtype_size(dtype());
  if (nbytes == 0) return out;
  if (dev == Device::CPU && device() == Device::CPU) {
    std::memcpy(out.data_ptr(), data_ptr(), size_t(nbytes));
  } else {
    cuda_memcpy(out.data_ptr(), data_ptr(), nbytes, dev, device());
  }
  return out;
}

Tensor& Tensor::set_requires_grad(bool on) {
  SANF_CHECK(!on || is_floating(dtype()), "requires_grad needs a floating dtype, tensor is ", dtype_name(dtype()));
  SANF_CHECK(is_leaf(), "set_requires_grad on a non-leaf tensor (detach it first)");
  impl().requires_grad = on;
  return *this;
}

std::string Tensor::info() const {
  if (!defined()) return "undefined";
  return cat(dtype_name(dtype()), " ", device_name(device()), " ", shape_str(shape()));
}

// ---- printing ------------------------------------------------------------------------------------

namespace {
void print_rec(std::ostream& os, const std::vector<double>& v, const Shape& shape, int d, int64_t base,
               const Shape& st, int indent, bool is_int) {
  const int64_t n = shape[d], edge = 3;
  const bool elide = n > 2 * edge + 1;
  os << "[";
  for (int64_t i = 0; i < n; ++i) {
    if (elide && i == edge) {
      os << (d + 1 == int(shape.size()) ? "..., " : "...,\n" + std::string(size_t(indent + 1), ' '));
      i = n - edge;
    }
    if (d + 1 == int(shape.size())) {
      double x = v[size_t(base + i * st[d])];
      if (is_int) os << int64_t(x);
      else os << std::setw(10) << std::setprecision(4) << x;
    } else {
      print_rec(os, v, shape, d + 1, base + i * st[d], st, indent + 1, is_int);
    }
    if (i + 1 < n) os << (d + 1 == int(shape.size()) ? ", " : ",\n" + std::string(size_t(indent + 1), ' '));
  }
  os << "]";
}
}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  os << "tensor(";
  if (t.dim() == 0) {
    os << t.item();
  } else if (t.numel() > 0) {
    std::vector<double> v = t.to_vector();
    print_rec(os, v, t.shape(), 0, 0, contiguous_strides(t.shape()), 7,
              t.dtype() == DType::I64 || t.dtype() == DType::U8);
  } else {
    os << "[]";
  }
  os << ", shape=" << shape_str(t.shape()) << ", " << dtype_name(t.dtype());
  if (t.device() != Device::CPU) os << ", " << device_name(t.device());
  if (t.requires_grad()) os << ", requires_grad";
  return os << ")";
}

}  // namespace sanf
