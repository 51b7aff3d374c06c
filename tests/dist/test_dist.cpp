// tests/dist/test_dist.cpp: the Communicator (dist/dist.h), run both as one process and under
// `mpirun -np 2` (tests/CMakeLists.txt registers both when MPI is found); the NCCL case needs a GPU per rank
// and says SKIPPED without them. Every case runs on every rank, in the
// same order, so the collectives inside them pair up; checks that fail on one rank fail that rank's run.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "dist/dist.h"

using namespace sanf;

namespace {
dist::Communicator& world() { return dist::Communicator::world(); }
}  // namespace

TEST_CASE("dist: part covers the items in contiguous, batch-aligned, balanced parts") {
  for (int size : {1, 2, 3, 5})
    for (int64_t n : {0, 1, 7, 64, 100, 257})
      for (int64_t unit : {1, 4, 64}) {
        int64_t next = 0, largest = 0, smallest = n;
        for (int r = 0; r < size; ++r) {
          const dist::Part p = dist::part(n, unit, r, size);
          CHECK(p.lo == next);
          CHECK(p.hi >= p.lo);
          if (p.hi < n) CHECK(p.hi % unit == 0);
          next = p.hi;
          largest = std::max(largest, (p.size() + unit - 1) / unit);
          smallest = std::min(smallest, (p.size() + unit - 1) / unit);
        }
        CHECK(next == n);
        CHECK(largest - smallest <= 1);  // whole units, spread as evenly as they go
      }
  CHECK(dist::part(10, 1, 0, 3).size() == 4);  // the first ranks take one more
  CHECK(dist::part(10, 1, 2, 3).size() == 3);
  CHECK_THROWS_WITH(dist::part(10, 0, 0, 2), doctest::Contains("bad arguments"));
  CHECK_THROWS(dist::part(10, 1, 2, 2));
}

TEST_CASE("dist: the world's rank and size come from the launcher") {
  const dist::LaunchInfo li = dist::launch_info();
  CHECK(world().size() == li.size);
  CHECK(world().rank() == li.rank);
  CHECK(world().local_rank() == li.local_rank);
  CHECK(world().is_root() == (li.rank == 0));
  if (li.size > 1) CHECK(dist::built_with_mpi());
}

TEST_CASE("dist: all_reduce_sum sums f32, f64 and i64 tensors over the ranks, in place") {
  const int n = world().size(), r = world().rank();
  for (DType dt : {DType::F32, DType::F64, DType::I64}) {
    std::vector<double> v(1000);
    for (size_t i = 0; i < v.size(); ++i) v[i] = double(i) * (r + 1);
    Tensor t = Tensor::from_vector(v, {10, 100}, dt);
    world().all_reduce_sum(t);
    const std::vector<double> got = t.to_vector();
    CHECK(t.shape() == Shape{10, 100});
    for (size_t i = 0; i < got.size(); i += 37) CHECK(got[i] == double(i) * n * (n + 1) / 2);
  }
  CHECK(world().all_reduce_sum(double(r + 1)) == n * (n + 1) / 2.0);
}

TEST_CASE("dist: broadcast gives every rank root's bytes") {
  const int n = world().size(), r = world().rank(), root = n - 1;
  Tensor t = Tensor::from_vector({double(r), 2.5, -1}, {3}, DType::F32);
  world().broadcast(t, root);
  CHECK(t.to_vector() == std::vector<double>{double(root), 2.5, -1});
  Tensor bytes = Tensor::from_vector({double(r), double(r + 1)}, {2}, DType::U8);
  world().broadcast(bytes, 0);
  CHECK(bytes.to_vector() == std::vector<double>{0, 1});
  CHECK(world().broadcast(r == 0 ? std::string("from rank 0") : std::string("other"), 0) == "from rank 0");
  CHECK(world().broadcast(std::string(), 0).empty());
  world().barrier();
}

TEST_CASE("dist: self is a world of one whose collectives change nothing") {
  dist::Communicator& self = dist::Communicator::self();
  CHECK(self.size() == 1);
  CHECK(self.rank() == 0);
  Tensor t = Tensor::from_vector({1, 2, 3}, {3}, DType::F32);
  self.all_reduce_sum(t);
  self.broadcast(t, 0);
  self.barrier();
  CHECK(t.to_vector() == std::vector<double>{1, 2, 3});
  CHECK(self.all_reduce_sum(4.0) == 4.0);
}

TEST_CASE("dist: bad tensors are refused naming the collective") {
  Tensor u8 = Tensor::from_vector({1, 2}, {2}, DType::U8);
  CHECK_THROWS_WITH(world().all_reduce_sum(u8), doctest::Contains("all_reduce_sum: dtype u8 is not summed"));
  Tensor m = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, DType::F32);
  Tensor mt = m.as_strided({3, 2}, {1, 3}, 0);  // a transposed view: not contiguous
  CHECK_THROWS_WITH(world().all_reduce_sum(mt), doctest::Contains("all_reduce_sum: the tensor must be defined and contiguous"));
  Tensor undefined;
  CHECK_THROWS_WITH(world().broadcast(undefined, 0), doctest::Contains("broadcast: the tensor must be defined"));
  CHECK_THROWS_WITH(world().broadcast(m, world().size()), doctest::Contains("is not a rank"));
}

namespace {
// What dist::launch_info() reads from the environment as set now.
void check_launch_info(const char* launcher, int size, int rank, int local_rank) {
  const dist::LaunchInfo li = dist::launch_info();
  CHECK(li.launcher == launcher);
  CHECK(li.size == size);
  CHECK(li.rank == rank);
  CHECK(li.local_rank == local_rank);
}
}  // namespace

TEST_CASE("dist: a launcher variable that is not a number is an error naming it") {
  if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr) return;  // under mpirun: the real ones are set
  setenv("OMPI_COMM_WORLD_SIZE", "two", 1);
  CHECK_THROWS_WITH(dist::launch_info(), doctest::Contains("OMPI_COMM_WORLD_SIZE='two' is not a number"));
  setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
  setenv("OMPI_COMM_WORLD_RANK", "4", 1);
  CHECK_THROWS_WITH(dist::launch_info(), doctest::Contains("OMPI_COMM_WORLD_RANK='4' is not a number in [0, 3]"));
  setenv("OMPI_COMM_WORLD_RANK", "3", 1);
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);
  check_launch_info("mpirun", 4, 3, 1);
  unsetenv("OMPI_COMM_WORLD_SIZE");
  unsetenv("OMPI_COMM_WORLD_RANK");
  unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
  CHECK(dist::launch_info().size == 1);
}

TEST_CASE("dist: CUDA tensors are summed and broadcast through NCCL, one GPU per rank") {
  // Runs where every rank has its own GPU (local rank < the node's GPU count) and the build has NCCL; the
  // ranks agree on that first, over MPI, so that all or none of them enter the NCCL calls.
  const bool mine = dist::built_with_nccl() && cuda_device_count() > world().local_rank();
  if (world().size() == 1 || world().all_reduce_sum(mine ? 0.0 : 1.0) != 0) {
    MESSAGE("SKIPPED: no CUDA device per rank (or one process, or no NCCL)");
    return;
  }
  const int n = world().size(), r = world().rank();
  std::vector<double> v(1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = double(i) * (r + 1);
  for (DType dt : {DType::F32, DType::F64, DType::I64}) {
    Tensor t = Tensor::from_vector(v, {1000}, dt, Device::CUDA);
    world().all_reduce_sum(t);
    const std::vector<double> got = t.to_vector();
    for (size_t i = 0; i < got.size(); i += 37) CHECK(got[i] == double(i) * n * (n + 1) / 2);
  }
  Tensor b = Tensor::from_vector({double(r), 7}, {2}, DType::F32, Device::CUDA);
  world().broadcast(b, n - 1);
  CHECK(b.to_vector() == std::vector<double>{double(n - 1), 7});
}

TEST_CASE("dist: the NCCL path with one rank on one GPU (a loopback communicator)") {
  // One process, one GPU: the same NCCL calls as several ranks make (communicator set-up, all-reduce,
  // broadcast, on the default stream), over a communicator of one rank. The sum over one rank is the
  // tensor itself, so the values must come back unchanged.
  if (!dist::built_with_nccl() || cuda_device_count() == 0 || world().size() > 1) {
    MESSAGE("SKIPPED: no CUDA device (or no NCCL, or several processes: the case above covers them)");
    return;
  }
  std::unique_ptr<dist::Communicator> c = dist::Communicator::nccl_loopback();
  std::vector<double> v(1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = double(i) - 3.5;
  for (DType dt : {DType::F32, DType::F64, DType::I64}) {
    Tensor t = Tensor::from_vector(v, {1000}, dt, Device::CUDA);
    const std::vector<double> before = t.to_vector();
    c->all_reduce_sum(t);
    CHECK(t.to_vector() == before);
  }
  Tensor b = Tensor::from_vector({4, 7}, {2}, DType::F32, Device::CUDA);
  c->broadcast(b, 0);
  CHECK(b.to_vector() == std::vector<double>{4, 7});
  CHECK_THROWS_WITH_AS(c->broadcast(b, 1), doctest::Contains("broadcast: root 1 is not a rank of 1"), Error);
}

TEST_CASE("dist: Slurm's variables count inside an srun step only") {
  if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("SLURM_NTASKS") != nullptr) return;
  setenv("SLURM_NTASKS", "3", 1);
  setenv("SLURM_PROCID", "2", 1);
  setenv("SLURM_LOCALID", "0", 1);
  CHECK(dist::launch_info().size == 1);  // a batch script's own environment, not a step of 3 tasks
  setenv("SLURM_STEP_ID", "0", 1);
  check_launch_info("slurm", 3, 2, 0);
  setenv("SLURM_PROCID", "-1", 1);
  CHECK_THROWS_WITH(dist::launch_info(), doctest::Contains("SLURM_PROCID='-1' is not a number in [0, 2]"));
  for (const char* v : {"SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_STEP_ID"}) unsetenv(v);
}

int main(int argc, char** argv) {
  dist::init(&argc, &argv);
  // One GPU per rank, as sanf's main selects it.
  if (world().size() > 1 && cuda_device_count() > world().local_rank()) cuda_select_device(world().local_rank());
  doctest::Context ctx(argc, argv);
  const int rc = ctx.run();
  dist::finalize();
  return rc;
}
