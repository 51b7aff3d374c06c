// core/cuda/memory.cu: device memory for a CUDA build: availability, a caching allocator, copies (uploads
// through pinned staging), sync.
//
// cudaMalloc and cudaFree are slow (cudaFree also synchronises the whole device), and a training step
// allocates and frees the same activation sizes every iteration. So freed blocks are kept in free lists
// keyed by a rounded size class and handed out again (core/block_cache.h, shared with the host allocator);
// in steady state no cudaMalloc or cudaFree runs.
//
// Reuse is safe without events because every kernel and copy runs on the legacy default stream: a block
// freed on the host after kernel k1 was queued, then handed to kernel k2, is only written once k1 is done.
// When cudaMalloc fails, the cached blocks are returned to the driver and the allocation is tried once more.
//
// In a CUDA build on a machine without a usable GPU, cuda_available() is false and every function here
// that needs the device throws "no CUDA support on this machine (...)" with the driver's reason.
//
// The allocator is created on first use and never destroyed: tensors held in static variables may be
// freed during process exit after any ordinary static would be gone, and the driver reclaims everything
// at exit anyway.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/block_cache.h"
#include "core/cuda_utils.h"
#include "core/tensor.h"

namespace sanf {

namespace {

class CachingAllocator {
 public:
  void* alloc(int64_t nbytes) {
    SANF_CHECK(nbytes >= 0, "cuda_alloc: negative size ", nbytes);
    if (nbytes == 0) return nullptr;
    const size_t cls = block_size_class(size_t(nbytes));
    std::lock_guard<std::mutex> lock(mu_);
    if (void* p = cache_.take(cls)) {  // last freed first: likely still in L2
      live_[p] = cls;
      live_bytes_ += cls;
      return p;
    }
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, cls);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // clear it, so no later check reports this handled failure
      release_cache_locked();
      err = cudaMalloc(&p, cls);
    }
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      if (err == cudaErrorMemoryAllocation)
        SANF_FAIL("out of CUDA memory allocating ", nbytes, " bytes (size class ", cls, "; ", live_bytes_,
                  " bytes in use by tensors; the cache was emptied and the allocation retried)");
      SANF_FAIL("CUDA error: cudaMalloc(", cls, " bytes): ", cudaGetErrorName(err), ": ", cudaGetErrorString(err));
    }
    live_[p] = cls;
    live_bytes_ += cls;
    used_ = true;
    return p;
  }

  // Whether any device memory was ever allocated (the device is in use: cuda_select_device is too late).
  bool used() {
    std::lock_guard<std::mutex> lock(mu_);
    return used_;
  }

  // Never throws: it runs from Storage's destructor.
  void free(void* p) noexcept {
    if (p == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) {
      // Not ours (cannot happen through Storage); hand it to the driver rather than keep it.
      (void)cudaFree(p);
      (void)cudaGetLastError();
      return;
    }
    const size_t cls = it->second;
    live_.erase(it);
    live_bytes_ -= cls;
    if (!cache_.put(p, cls)) {  // out of host memory for the list: give the block back instead
      (void)cudaFree(p);
      (void)cudaGetLastError();
    }
  }

 private:
  // Return every cached block to the driver (mu_ held). cudaFree waits for the device, so blocks still
  // used by queued kernels are not pulled from under them.
  void release_cache_locked() {
    cache_.release_all([](void* p, size_t) { (void)cudaFree(p); });
    (void)cudaGetLastError();
  }

  std::mutex mu_;
  BlockCache cache_;                        // freed blocks by size class
  std::unordered_map<void*, size_t> live_;  // block handed out -> its size class
  size_t live_bytes_ = 0;
  bool used_ = false;
};

CachingAllocator& allocator() {
  static CachingAllocator* a = new CachingAllocator();  // deliberately never destroyed (see the top)
  return *a;
}

cudaMemcpyKind copy_kind(Device dst, Device src) {
  if (src == Device::CPU) return dst == Device::CPU ? cudaMemcpyHostToHost : cudaMemcpyHostToDevice;
  return dst == Device::CPU ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice;
}

}  // namespace

namespace {
// Whether a device is usable, and if not, why (asked once: the answer cannot change while the process runs).
// A machine without a driver or a device answers cudaGetDeviceCount with an error code, which means "no".
struct Availability {
  bool ok = false;
  std::string why;
};
const Availability& availability() {
  static const Availability a = [] {
    Availability r;
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      r.why = cat(cudaGetErrorName(err), ": ", cudaGetErrorString(err));
    } else if (count == 0) {
      r.why = "no CUDA device found";
    } else {
      r.ok = true;
    }
    return r;
  }();
  return a;
}

// Every entry point that needs the device goes through this, so a CUDA build on a machine without a GPU
// fails with one clear message instead of a driver error from the middle of an op.
void require_device(const char* what) {
  if (!availability().ok)
    SANF_FAIL("[", what, "] no CUDA support on this machine (this build has CUDA, but ", availability().why, ")");
}
}  // namespace

bool cuda_available() {
  try {
    return availability().ok;
  } catch (...) {  // only std::bad_alloc could get here; "no device" is the safe answer
    return false;
  }
}

void* cuda_alloc(int64_t nbytes) {
  if (nbytes == 0) return nullptr;
  require_device("cuda_alloc");
  return allocator().alloc(nbytes);
}

void cuda_free(void* p) { allocator().free(p); }

namespace {
// Host-to-device uploads through pinned staging: the data path (every batch of images, every batch of
// cached features for training) goes up this way. A cudaMemcpy from pageable memory blocks the host until
// the device has the bytes, and the driver stages it through its own small pinned buffer. Here the bytes
// are copied into one of two pinned buffers and sent by cudaMemcpyAsync on the default stream: the call
// returns once the host copy is made (the source may be freed or reused at once), the transfer runs in
// order with the kernels queued before and after it, and the host goes on (decoding the next batch) while
// the device works. A buffer is refilled only after the event recorded behind its previous transfer has
// fired. Uploads larger than a buffer go in chunks, alternating buffers. If pinned memory cannot be had,
// uploads fall back to plain cudaMemcpy.
class PinnedStaging {
 public:
  static constexpr size_t kBytes = size_t(8) << 20;  // per buffer
  static constexpr size_t kMinBytes = size_t(64) << 10;  // smaller copies: cudaMemcpy, already cheap

  // False when staging is unavailable (the caller copies the plain way).
  bool upload(void* dst, const void* src, size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ready_locked()) return false;
    for (size_t off = 0; off < n; off += kBytes) {
      Slot& s = slots_[next_];
      next_ ^= 1;
      CUDA_CHECK(cudaEventSynchronize(s.done));  // the buffer's previous transfer has finished
      const size_t len = std::min(kBytes, n - off);
      std::memcpy(s.buf, static_cast<const char*>(src) + off, len);
      CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dst) + off, s.buf, len, cudaMemcpyHostToDevice, 0));
      CUDA_CHECK(cudaEventRecord(s.done, 0));
    }
    return true;
  }

 private:
  struct Slot {
    void* buf = nullptr;
    cudaEvent_t done = nullptr;
  };
  bool ready_locked() {
    if (state_ == 0) {
      state_ = 2;
      for (Slot& s : slots_) {
        if (cudaHostAlloc(&s.buf, kBytes, cudaHostAllocDefault) != cudaSuccess ||
            cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming) != cudaSuccess ||
            cudaEventRecord(s.done, 0) != cudaSuccess) {
          (void)cudaGetLastError();  // handled: uploads go the plain way
          state_ = 1;
          break;
        }
      }
    }
    return state_ == 2;
  }
  std::mutex mu_;
  Slot slots_[2];
  int next_ = 0;
  int state_ = 0;  // 0: not tried, 1: unavailable, 2: ready
};
PinnedStaging& staging() {
  static PinnedStaging* s = new PinnedStaging();  // never destroyed, like the allocator
  return *s;
}
}  // namespace

// Host-to-device copies of 64 KiB and more return once the source has been read (pinned staging, above);
// the device side completes in stream order, before any later kernel or copy. Device-to-host copies are
// synchronous (the bytes are on the host when this returns). Device-to-device copies are queued on the
// default stream, so every later kernel and copy sees their result.
void cuda_memcpy(void* dst, const void* src, int64_t nbytes, Device dst_dev, Device src_dev) {
  SANF_CHECK(nbytes >= 0, "cuda_memcpy: negative size ", nbytes);
  if (nbytes == 0) return;
  if (dst_dev == Device::CPU && src_dev == Device::CPU) {
    std::memcpy(dst, src, size_t(nbytes));
    return;
  }
  require_device("cuda_memcpy");
  if (dst_dev == Device::CUDA && src_dev == Device::CPU && size_t(nbytes) >= PinnedStaging::kMinBytes &&
      staging().upload(dst, src, size_t(nbytes)))
    return;
  CUDA_CHECK(cudaMemcpy(dst, src, size_t(nbytes), copy_kind(dst_dev, src_dev)));
}

int cuda_device_count() {
  if (!cuda_available()) return 0;
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  return count;
}

void cuda_select_device(int index) {
  require_device("cuda_select_device");
  const int count = cuda_device_count();
  SANF_CHECK(index >= 0 && index < count, "cuda:", index, " requested, but this machine has ", count,
             " CUDA device", count == 1 ? "" : "s", " (cuda:0", count > 1 ? cat(" .. cuda:", count - 1) : "", ")");
  int current = 0;
  CUDA_CHECK(cudaGetDevice(&current));
  if (current == index) return;
  SANF_CHECK(!allocator().used(), "cuda:", index, " requested after cuda:", current,
             " was already in use; select the device before any tensor is placed on it");
  CUDA_CHECK(cudaSetDevice(index));
}

std::string cuda_device_name() {
  require_device("cuda_device_name");
  int current = 0;
  CUDA_CHECK(cudaGetDevice(&current));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, current));
  return prop.name;
}

void cuda_synchronize() {
  require_device("cuda_synchronize");
  CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace sanf
