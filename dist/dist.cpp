// dist/dist.cpp: launcher environment, MPI set-up and the collectives over MPI (CPU tensors) and NCCL (CUDA
// tensors). See dist/dist.h.
#include "dist/dist.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <vector>

#ifndef SANF_MPI
#define SANF_MPI 0
#endif
#ifndef SANF_NCCL
#define SANF_NCCL 0
#endif
#if SANF_MPI
#include <mpi.h>
#endif
#if SANF_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#endif

namespace sanf::dist {

namespace {

bool g_mpi_initialised = false;  // by init(); MPI_Finalize is owed
bool g_finalised = false;

// The launcher variable `name` as an int in [lo, hi], or -1 when unset.
int env_int(const char* name, int lo, int hi) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return -1;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  SANF_CHECK(*end == '\0' && x >= lo && x <= hi, "the launcher's ", name, "='", v, "' is not a number in [", lo, ", ",
             hi, "]");
  return int(x);
}

#if SANF_MPI
void mpi_check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  SANF_FAIL("MPI error in ", call, ": ", std::string(text, size_t(len)));
}
#define SANF_MPI_CHECK(call) mpi_check((call), #call)

// MPI counts are ints: fn(offset, count) over [0, n) in pieces of at most INT_MAX.
template <typename Fn>
void in_int_chunks(int64_t n, Fn fn) {
  for (int64_t at = 0; at < n; at += INT_MAX) fn(at, int(std::min<int64_t>(n - at, INT_MAX)));
}

MPI_Datatype mpi_sum_type(DType dt) {
  switch (dt) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::I64: return MPI_INT64_T;
    default: SANF_FAIL("all_reduce_sum: dtype ", dtype_name(dt), " is not summed (f32, f64 and i64 are)");
  }
}
#endif

#if SANF_NCCL
void nccl_check(ncclResult_t r, const char* call) {
  SANF_CHECK(r == ncclSuccess, "NCCL error in ", call, ": ", ncclGetErrorString(r));
}
#define SANF_NCCL_CHECK(call) nccl_check((call), #call)

ncclDataType_t nccl_sum_type(DType dt) {
  switch (dt) {
    case DType::F32: return ncclFloat32;
    case DType::F64: return ncclFloat64;
    case DType::I64: return ncclInt64;
    default: SANF_FAIL("all_reduce_sum: dtype ", dtype_name(dt), " is not summed (f32, f64 and i64 are)");
  }
}
#endif

}  // namespace

bool built_with_mpi() { return SANF_MPI != 0; }
bool built_with_nccl() { return SANF_NCCL != 0; }

LaunchInfo launch_info() {
  LaunchInfo li;
  constexpr int kMax = 1 << 24;
  if (const int size = env_int("OMPI_COMM_WORLD_SIZE", 1, kMax); size > 0) {
    li.launcher = "mpirun";
    li.size = size;
    li.rank = std::max(0, env_int("OMPI_COMM_WORLD_RANK", 0, size - 1));
    li.local_rank = std::max(0, env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0, kMax));
  } else if (const int ntasks = env_int("SLURM_NTASKS", 1, kMax); ntasks > 0 && std::getenv("SLURM_STEP_ID")) {
    // srun sets SLURM_STEP_ID for the tasks of a job step; a batch script alone is not a step of N tasks.
    li.launcher = "slurm";
    li.size = ntasks;
    li.rank = std::max(0, env_int("SLURM_PROCID", 0, ntasks - 1));
    li.local_rank = std::max(0, env_int("SLURM_LOCALID", 0, kMax));
  }
  return li;
}

void init(int* argc, char*** argv) {
  if (g_mpi_initialised) return;
  const LaunchInfo li = launch_info();
  Communicator& w = Communicator::world();
  w.local_rank_ = li.local_rank;
  if (li.size <= 1) return;
#if SANF_MPI
  int provided = 0;
  SANF_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  g_mpi_initialised = true;
  // Errors come back as codes (and become exceptions) instead of aborting inside MPI.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  SANF_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &w.rank_));
  SANF_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &w.size_));
#else
  (void)argc, (void)argv;
  SANF_FAIL(li.launcher, " started ", li.size, " processes, but this sanf was built without MPI (SANF_MPI off): each "
            "would run the whole job alone. Rebuild with MPI (Debian: libopenmpi-dev), or run one process.");
#endif
}

void finalize() {
  if (!g_mpi_initialised || g_finalised) return;
  g_finalised = true;
  Communicator::world().nccl_.reset();
#if SANF_MPI
  MPI_Finalize();
#endif
}

void abort(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
#if SANF_MPI
  if (g_mpi_initialised && !g_finalised) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

// ---- Communicator ----------------------------------------------------------------------------------------

struct Communicator::Nccl {
#if SANF_NCCL
  ncclComm_t comm = nullptr;
  ~Nccl() {
    if (comm != nullptr) ncclCommDestroy(comm);
  }
#endif
};

Communicator::Communicator(int rank, int size, int local_rank)
    : rank_(rank), size_(size), local_rank_(local_rank) {}
Communicator::~Communicator() = default;

Communicator& Communicator::world() {
  static Communicator w(0, 1, 0);
  return w;
}

Communicator& Communicator::self() {
  static Communicator s(0, 1, 0);
  return s;
}

std::unique_ptr<Communicator> Communicator::nccl_loopback() {
  SANF_CHECK(built_with_nccl(), "Communicator::nccl_loopback: this build has no NCCL");
  std::unique_ptr<Communicator> l(new Communicator(0, 1, 0));
  l->nccl_loopback_ = true;
  return l;
}

bool Communicator::collective_needed(const Tensor& t) const {
  return size_ > 1 || (nccl_loopback_ && t.device() == Device::CUDA);
}

// The NCCL communicator over this communicator's ranks, made the first time: rank 0's unique id is broadcast
// through MPI, then every rank joins on its current CUDA device. (A build without MPI has one rank, so NCCL
// then serves the loopback communicator alone, and there is nothing to broadcast.)
void Communicator::ensure_nccl() {
  if (nccl_) return;
  nccl_ = std::make_unique<Nccl>();
#if SANF_NCCL
  ncclUniqueId id;
  if (rank_ == 0) SANF_NCCL_CHECK(ncclGetUniqueId(&id));
#if SANF_MPI
  if (size_ > 1) SANF_MPI_CHECK(MPI_Bcast(&id, int(sizeof id), MPI_BYTE, 0, MPI_COMM_WORLD));
#endif
  SANF_NCCL_CHECK(ncclCommInitRank(&nccl_->comm, size_, id, rank_));
#endif
}

void Communicator::check(const Tensor& t, const char* what) const {
  SANF_CHECK(t.defined() && t.is_contiguous(), what, ": the tensor must be defined and contiguous, got ",
             t.defined() ? t.info() : std::string("an undefined tensor"));
}

void Communicator::all_reduce_sum(Tensor& t) {
  check(t, "all_reduce_sum");
  SANF_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64 || t.dtype() == DType::I64, "all_reduce_sum: dtype ",
             dtype_name(t.dtype()), " is not summed (f32, f64 and i64 are)");
  if (!collective_needed(t)) return;
#if SANF_MPI
  if (t.device() == Device::CPU) {
    const MPI_Datatype type = mpi_sum_type(t.dtype());
    auto* p = static_cast<char*>(t.data_ptr());
    const int64_t elem = dtype_size(t.dtype());
    in_int_chunks(t.numel(), [&](int64_t at, int count) {
      SANF_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, p + at * elem, count, type, MPI_SUM, MPI_COMM_WORLD));
    });
    return;
  }
#endif
#if SANF_NCCL
  if (t.device() == Device::CUDA) {
    ensure_nccl();
    SANF_NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), size_t(t.numel()), nccl_sum_type(t.dtype()), ncclSum,
                                  nccl_->comm, cudaStreamLegacy));
    return;
  }
#endif
  SANF_FAIL("all_reduce_sum: no transport for a ", t.info(), " tensor across ", size_,
            " processes in this build (MPI: ", built_with_mpi() ? "yes" : "no", ", NCCL: ",
            built_with_nccl() ? "yes" : "no", ")");
}

void Communicator::broadcast(Tensor& t, int root) {
  check(t, "broadcast");
  SANF_CHECK(root >= 0 && root < size_, "broadcast: root ", root, " is not a rank of ", size_);
  if (!collective_needed(t)) return;
  const int64_t bytes = t.numel() * int64_t(dtype_size(t.dtype()));
#if SANF_MPI
  if (t.device() == Device::CPU) {
    auto* p = static_cast<char*>(t.data_ptr());
    in_int_chunks(bytes, [&](int64_t at, int count) {
      SANF_MPI_CHECK(MPI_Bcast(p + at, count, MPI_BYTE, root, MPI_COMM_WORLD));
    });
    return;
  }
#endif
#if SANF_NCCL
  if (t.device() == Device::CUDA) {
    ensure_nccl();
    SANF_NCCL_CHECK(ncclBroadcast(t.data_ptr(), t.data_ptr(), size_t(bytes), ncclUint8, root, nccl_->comm,
                                  cudaStreamLegacy));
    return;
  }
#endif
  (void)bytes;
  SANF_FAIL("broadcast: no transport for a ", t.info(), " tensor across ", size_, " processes in this build");
}

void Communicator::barrier() {
  if (size_ == 1) return;
#if SANF_MPI
  SANF_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
#endif
}

double Communicator::all_reduce_sum(double v) {
  if (size_ == 1) return v;
  Tensor t = Tensor::empty({1}, DType::F64);
  *t.data<double>() = v;
  all_reduce_sum(t);
  return *t.data<double>();
}

std::string Communicator::broadcast(const std::string& s, int root) {
  if (size_ == 1) return s;
  Tensor len = Tensor::empty({1}, DType::I64);
  *len.data<int64_t>() = int64_t(s.size());
  broadcast(len, root);
  const int64_t n = *len.data<int64_t>();
  if (n == 0) return std::string();
  Tensor bytes = Tensor::empty({n}, DType::U8);
  if (rank_ == root) std::copy(s.begin(), s.end(), bytes.data<uint8_t>());
  broadcast(bytes, root);
  return std::string(reinterpret_cast<const char*>(bytes.data<uint8_t>()), size_t(n));
}

Part part(int64_t n, int64_t unit, int rank, int size) {
  SANF_CHECK(n >= 0 && unit > 0 && size > 0 && rank >= 0 && rank < size, "part: bad arguments n ", n, ", unit ", unit,
             ", rank ", rank, " of ", size);
  const int64_t units = (n + unit - 1) / unit, q = units / size, rem = units % size;
  const int64_t u0 = rank * q + std::min<int64_t>(rank, rem), u1 = u0 + q + (rank < rem ? 1 : 0);
  return Part{std::min(n, u0 * unit), std::min(n, u1 * unit)};
}

}  // namespace sanf::dist
