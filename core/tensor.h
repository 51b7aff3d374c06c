// core/tensor.h: Storage and Tensor.
//
// A Tensor is a cheap handle (shared_ptr) to a TensorImpl: a view (shape, strides, offset, dtype) over a
// shared, reference-counted Storage on one device. Views (reshape, transpose, narrow, expand, ...) make a
// new TensorImpl over the same Storage and copy nothing. The autograd fields (requires_grad, grad,
// grad_fn) live here so that every tensor can take part in a graph; the engine that uses them is in
// autograd/. Everything that computes (copies included) is in kernels/ and autograd/: this file only holds
// metadata, allocation and host<->device transfer of contiguous bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"

namespace sanf {

struct Node;  // autograd/engine.h

// A block of bytes on one device. Freed through `release` (allocator, munmap, ...) when the last view dies.
class Storage {
 public:
  Storage(int64_t nbytes, Device device);  // allocate (64-byte aligned on the CPU)
  Storage(void* data, int64_t nbytes, Device device, std::function<void(void*)> release);  // adopt memory
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  int64_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  int64_t nbytes_ = 0;
  Device device_ = Device::CPU;
  std::function<void(void*)> release_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;       // in elements
  int64_t offset = 0;  // in elements, into storage
  DType dtype = DType::F32;
  // autograd
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient (leaves only)
  std::shared_ptr<Node> grad_fn;     // the node that made this tensor (null for leaves)
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Uninitialised contiguous tensor. (zeros/ones/full/rand* are declared in autograd/ops.h and defined in autograd/factory.cpp: filling is a kernel.)
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  // A CPU tensor holding `values` (converted to dtype), then moved to `device`.
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = DType::F32,
                            Device device = Device::CPU);
  // Wrap existing memory without copying; `release` is called when the last view dies.
  static Tensor from_blob(void* data, const Shape& shape, DType dtype, Device device,
                          std::function<void(void*)> release);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int dim() const { return int(impl().shape.size()); }
  int64_t size(int d) const;  // negative d counts from the end
  int64_t numel() const { return sanf::numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  bool is_contiguous() const;
  Layout layout() const { return make_layout(shape(), strides()); }
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }

  // Pointer to element 0 of this view. data<T>() checks that T matches the dtype (the pointer may be a device pointer).
  void* data_ptr() const;
  template <typename T> T* data() const;

  // A view of the same storage with other metadata; no checks beyond staying inside the storage.
  // (The differentiable views are in autograd/ops.h and are built on this.)
  Tensor as_strided(const Shape& shape, const Shape& strides, int64_t offset) const;

  // Host-side reading, for tests, printing and small metadata: every element as a double, in row-major
  // order, whatever the strides, dtype or device (a CUDA tensor is copied to the host first).
  std::vector<double> to_vector() const;
  double item() const;  // the single element of a 1-element tensor
  // The raw bytes of every element in row-major order (a contiguous host image of the view).
  std::vector<char> to_bytes() const;

  // Copy a contiguous tensor to another device (a plain memcpy of its bytes).
  Tensor copy_to_device(Device device) const;

  // ---- autograd fields (see autograd/engine.h) ----
  bool requires_grad() const { return impl().requires_grad; }
  // Mark a leaf as trainable; returns *this so `auto w = Tensor::empty(...).set_requires_grad(true)` reads.
  Tensor& set_requires_grad(bool on);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  Tensor grad() const { return Tensor(impl().grad); }  // undefined until a backward reaches this leaf
  void set_grad(const Tensor& g) { impl().grad = g.impl_; }
  void zero_grad() { impl().grad.reset(); }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  void set_grad_fn(std::shared_ptr<Node> fn) { impl().grad_fn = std::move(fn); }

  TensorImpl* get() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  std::string info() const;  // "f32 cpu (2, 3)", for error messages

 private:
  TensorImpl& impl() const {
    SANF_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
  }
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);  // readable, PyTorch-like, elided when large

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::BF16; };
template <> struct dtype_of<f16> { static constexpr DType value = DType::F16; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::I64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::U8; };

template <typename T> T* Tensor::data() const {
  SANF_CHECK(dtype() == dtype_of<T>::value, "data<T>(): tensor is ", dtype_name(dtype()), ", asked for ",
             dtype_name(dtype_of<T>::value));
  return static_cast<T*>(data_ptr());
}

// ---- CUDA memory (core/cuda/memory.cu; without SANF_CUDA these throw "built without CUDA") ----------
bool cuda_available();  // built with CUDA and a device is present
void* cuda_alloc(int64_t nbytes);
void cuda_free(void* p);
void cuda_memcpy(void* dst, const void* src, int64_t nbytes, Device dst_dev, Device src_dev);
void cuda_synchronize();
// Device selection (a process uses one GPU; `--device cuda:N`): cuda_select_device(N) makes device N the
// one every later CUDA call uses. It must come before the first CUDA allocation: afterwards, selecting
// another device is an error (tensors already live on the first). A bad index is an error naming the
// machine's device count. cuda_device_name() is the current device's name (e.g. "NVIDIA H200").
void cuda_select_device(int index);
int cuda_device_count();  // 0 without CUDA or a device
std::string cuda_device_name();

}  // namespace sanf
