// dist/dist.h: several processes working on one job: ranks, the world communicator and its collectives.
//
// The layer sits right after core/ and uses nothing else; nn/, flows/ and vit/ never know about ranks. apps/
// splits the work (apps/train.cpp, apps/features.cpp, apps/scoring.cpp) and calls the collectives here.
//
// Launch. `mpirun -np N sanf ...` (Open MPI) or `srun -n N sanf ...` (Slurm) start N copies of the program.
// init() reads the launcher's environment (Open MPI: OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK; Slurm:
// SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID) and, when it says there are several processes and the build
// has MPI, initialises MPI; from then on the rank and world size are MPI's own (MPI_Comm_rank/size on
// MPI_COMM_WORLD), the local rank (the process's index on its node) the launcher's. Without a launcher,
// with one process, or in a build without MPI (SANF_MPI off) the program is one process: rank 0 of a world
// of 1, and every collective returns at once, leaving its tensor as it was.
//
// Collectives (Communicator) work in place on a contiguous tensor, on every rank of the communicator, in the
// same order on every rank (a rank that skips one hangs the others until the job is aborted):
//   all_reduce_sum(t)   every rank's t becomes the element-wise sum over the ranks (f32, f64, i64)
//   broadcast(t, root)  every rank's t becomes root's (any dtype; the bytes are copied)
//   barrier()           returns when every rank has called it
// A CPU tensor goes through MPI; a CUDA tensor through NCCL (built with SANF_NCCL; its communicator is made
// at the first CUDA collective, rank 0's unique id broadcast through MPI), on the legacy default stream that
// every kernel of the framework runs on, so it is ordered after the kernels that produced the tensor. Each
// rank drives one GPU: apps/ selects GPU `local_rank()` unless the command line names one (--device cuda:N).
//
// Communicator::self() is a world of one (rank 0 of 1, no-op collectives): what code that runs alone inside
// a multi-process job uses (`sanf oneclass --parallel classes` trains whole classes per rank).
//
// Failure. A rank that fails cannot tell the others, which may be waiting in a collective: abort() ends the
// whole job (MPI_Abort on MPI_COMM_WORLD, so mpirun exits with the code given), or exits the process when
// it is alone.
#pragma once

#include <memory>
#include <string>

#include "core/tensor.h"

namespace sanf::dist {

// What the launcher's environment says, before MPI is initialised.
struct LaunchInfo {
  int rank = 0, size = 1, local_rank = 0;
  std::string launcher;  // "mpirun", "slurm" or "" (none: one process)
};
LaunchInfo launch_info();  // throws naming the variable when one is set but is not a number in range

// Initialises MPI when launched as several processes and built with MPI (idempotent). Call once at the start
// of main, before any other thread starts. Throws when the launcher asks for several processes and the build
// has no MPI (they would each run the whole job alone).
void init(int* argc, char*** argv);
// Finalises MPI if init() initialised it (idempotent). Every rank must call it; after abort() none does.
void finalize();
// Ends the whole job with exit code `code`: MPI_Abort over MPI_COMM_WORLD when MPI is initialised, else
// std::exit.
[[noreturn]] void abort(int code);

// Whether this build has MPI / NCCL (what CMake found; see the configure summary).
bool built_with_mpi();
bool built_with_nccl();

class Communicator {
 public:
  // Every rank of the job (after init()); a world of one without MPI or a launcher.
  static Communicator& world();
  // A world of one: rank 0, size 1, local rank 0; collectives do nothing.
  static Communicator& self();
  // A world of one whose CUDA collectives still go through NCCL, a communicator of one rank (CPU tensors are
  // left as they are): the NCCL path exercised on a machine with one GPU (tests/dist/test_dist.cpp). Throws
  // in a build without NCCL. The caller owns it (its NCCL communicator is destroyed with it).
  static std::unique_ptr<Communicator> nccl_loopback();

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }
  bool is_root() const { return rank_ == 0; }

  void all_reduce_sum(Tensor& t);
  void broadcast(Tensor& t, int root);
  void barrier();

  // Conveniences over the above: the sum of one number, root's string on every rank.
  double all_reduce_sum(double v);
  std::string broadcast(const std::string& s, int root);

  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

 private:
  friend void init(int* argc, char*** argv);
  friend void finalize();
  Communicator(int rank, int size, int local_rank);
  void ensure_nccl();
  bool collective_needed(const Tensor& t) const;  // false: a world of one, nothing to do
  void check(const Tensor& t, const char* what) const;
  int rank_, size_, local_rank_;
  bool nccl_loopback_ = false;
  struct Nccl;
  std::unique_ptr<Nccl> nccl_;  // made at the first CUDA collective
};

// The contiguous part [lo, hi) of `n` items that rank `rank` of `size` takes when the items go in units of
// `unit` (a batch: the parts are cut at multiples of it, so a rank's batches are the batches one process
// would run); the units are spread as evenly as they go, the first ranks taking one more.
struct Part {
  int64_t lo = 0, hi = 0;
  int64_t size() const { return hi - lo; }
};
Part part(int64_t n, int64_t unit, int rank, int size);

}  // namespace sanf::dist
