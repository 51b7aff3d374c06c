#!/usr/bin/env bash
# tools/device/cuda_check.sh: the CUDA check on a GPU machine (an H100/H200): preflight, build for sm_90, the
# CUDA tests, compute-sanitizer, `sanf demo --device cuda` against the CPU's table, then the benchmarks against
# PyTorch; a summary table at the end.
#
# Usage (it changes to the repository root itself):   OUT=/some/dir bash tools/device/cuda_check.sh
# Through the device tool, after `bash tools/device/make_devdeps.sh` here:
#   run(command='bash tools/device/cuda_check.sh', carry=[".devdeps"], timeout_s=420)
# The whole run aims at SANF_DEADLINE_S (default 330 s): each stage gets its own cap or what is left of the
# deadline, whichever is less, so one run leaves time for a targeted rerun on the same machine.
#
# Stages (SANF_CHECK_STAGES, comma-separated; default preflight,build,tests,memcheck,demo,bench):
#   preflight  seconds: nvidia-smi's driver, GPU and compute mode; nvcc; the cuBLAS and cuRAND headers and
#              libraries of nvcc's toolkit; tools/device/cuda_probe.cu built with nvcc and run (runtime and
#              driver versions, cudaGetDeviceCount, cudaMalloc, a kernel, cuBLAS, cuRAND). If CUDA is not
#              usable the script stops here with the reason. Also started, in the background: whether
#              compute-sanitizer works on this machine (the probe under memcheck) and PyTorch's versions.
#   build      configure (Ninja, Release, CMAKE_CUDA_ARCHITECTURES=<SANF_CUDA_ARCH, default 90>-real, -lineinfo)
#              and build test_cuda, test_dist, sanf and the bench/ programs only (everything with
#              SANF_DEVICE_ALL_TESTS=1);
#              then checks that each executable links one CUDA runtime (the shared libcudart, not also the
#              static one).
#   tests      ctest -R '^cuda|^dist: communicator, one process' -j8 with CUDA_LAUNCH_BLOCKING=1, each
#              CUDA test case in its own process, once (the dist test's NCCL loopback case runs NCCL on the
#              one GPU when CMake found NCCL); the full verbose output in ctest.log. No test found, a failure
#              or a skipped case fails the run.
#   memcheck   compute-sanitizer, in parallel jobs (SANF_CHECK_PARALLEL, default 8), --print-limit 10: first
#              every failing CUDA test case alone under memcheck (at most SANF_CHECK_MEMCHECK_FAILED_MAX, 8),
#              then memcheck over our own kernels (fused attention; reductions, the multi-tensor sum of
#              squares and Adam, and softmax; layer norm, pooling and index_select; copies, fills and
#              elementwise; random; the GEMM epilogues, cuBLASLt's included) and racecheck over the fused
#              attention. Each job at most SANF_CHECK_MEMCHECK_S (75 s).
#   demo       `sanf demo --device cuda` (10 classes, fresh feature cache, at most 150 s): every class's AUROC
#              within SANF_CHECK_DEMO_TOL (0.005) of tools/device/demo_cpu_results.csv (a CPU run's); demo.log.
#   bench      only when the tests passed or only opt-in paths failed (then those are left off;
#              SANF_CHECK_BENCH_ALWAYS=1: regardless), most important first:
#              SANF_CHECK_BENCH groups (default vit,flow,ops,profile): vit = ViT-L/16 forward, bf16 at batch
#              64 and 256 with the fused attention and cuBLASLt's epilogues each off and on
#              (`--fused-attention both --cublaslt both`), TF32 at 64 and 256 and f32 at 64 (cuBLASLt off, on),
#              then PyTorch's same configurations in one process; flow = the flow training step
#              at ViT-L width; ops = per-op times at ViT-L shapes; profile = Nsight Compute's kernel
#              durations over a bf16 ViT-L forward (the opt-in paths whose tests passed switched on),
#              summed per kernel (tools/device/ncu_table.py, into
#              bench.err and the output). Both sides in the same precision; JSON lines in bench.jsonl.
#
# A targeted rerun (a machine stays warm only 30 s after a call, so a rerun usually starts a fresh one and
# builds again; on a warm one the build folder is kept and only what changed is recompiled):
#   SANF_CHECK_STAGES=build,tests SANF_CHECK_TESTS='gemm|bf16'   ctest -R on the test names (default: as above)
#   SANF_CHECK_STAGES=build,memcheck SANF_CHECK_MEMCHECK='ln=cuda parity: layer_norm;gemm=cuda parity: gemm*'
#                     memcheck jobs, 'label=doctest -tc filter' separated by ';' (in a filter ',' separates
#                     patterns; write '*' for a comma inside a name); SANF_CHECK_RACECHECK likewise
#                     (empty: none)
#   SANF_CHECK_STAGES=build,bench SANF_CHECK_BENCH=vit SANF_CHECK_BENCH_ALWAYS=1
# Other settings: SANF_DEADLINE_S (330), SANF_BUILD_DIR (build-sm90), SANF_CUDA_ARCH (90), SANF_CHECK_JOBS
# (build jobs: all cores), SANF_CHECK_SANITIZER (the compute-sanitizer to use), SANF_DEVICE_ALL_TESTS=1 (also
# the CPU tests: the whole build and every ctest test), SANF_CHECK_SKIP_PREFLIGHT=1 (go on after a failed
# preflight: a dry run of the later stages on a machine without a GPU).
#
# $OUT (default ./out-device) receives 8 files, the device tool's limit: preflight.log, build.log,
# ctest.log, memcheck.log, demo.log, bench.jsonl, bench.err, summary.txt. Scratch files go to $SANF_BUILD_DIR/check/.
# The last lines printed are the summary table (also summary.txt) and "RESULT: PASS|FAIL|INCOMPLETE"; the
# exit status is 0 only for PASS: every stage that ran succeeded, the tests ran and all passed (none
# skipped), and compute-sanitizer ran and reported no error (benchmark failures are reported, not counted).
# The script only reads GPU state; it changes no GPU setting.
set -uo pipefail

OUT="${OUT:-./out-device}"
mkdir -p "$OUT" || exit 1
OUT="$(cd "$OUT" && pwd)"
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1  # the repository root
ROOT="$PWD"
BUILD="${SANF_BUILD_DIR:-build-sm90}"
WORK="$BUILD/check"
ARCH="${SANF_CUDA_ARCH:-90}"
JOBS="${SANF_CHECK_JOBS:-$(nproc 2>/dev/null || echo 16)}"
PARALLEL="${SANF_CHECK_PARALLEL:-8}"
STAGES=",${SANF_CHECK_STAGES:-preflight,build,tests,memcheck,demo,bench},"
START=$(date +%s)
DEADLINE=$((START + ${SANF_DEADLINE_S:-330}))
mkdir -p "$WORK" || exit 1
rm -f "$OUT"/{preflight.log,build.log,ctest.log,memcheck.log,demo.log,bench.jsonl,bench.err,summary.txt}

want() { [[ "$STAGES" == *",$1,"* ]]; }
now() { date +%s; }
elapsed() { echo $(($(now) - START)); }
section() { echo; echo "==== $* ($(elapsed) s)"; }
# Seconds a step may take: its cap, or what is left before the deadline, but at least `floor` (default 10).
budget() {
  local cap=$1 floor=${2:-10} left=$((DEADLINE - $(now)))
  ((left < floor)) && left=$floor
  ((cap < left)) && echo "$cap" || echo "$left"
}
# run_capped SECONDS CMD...: the command under a time limit (exit 124 when it ran out).
run_capped() {
  local t=$1
  shift
  timeout --kill-after=10 "$t" "$@"
}

# The summary: one row per stage (stage, result, seconds, detail), plus detail blocks.
ROWS=()
DETAILS=()
row() { ROWS+=("$(printf '%-10s %-11s %5s  %s' "$1" "$2" "$3" "$4")"); }
VERDICT_FAIL=0  # something failed
VERDICT_INCOMPLETE=0  # something needed for PASS did not run

summary() {
  section "summary"
  {
    local commit
    commit="$(git -C "$ROOT" log -1 --format='%h %s' 2>/dev/null | cut -c1-80)"
    # The device tool sends the working tree, which can be ahead of the .git it carries.
    [ -n "$commit" ] && [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | head -1)" ] &&
      commit="$commit (plus uncommitted changes)"
    echo "sanf CUDA check of ${commit:-a tree without git}"
    [ -z "$GPU_LINE" ] &&
      GPU_LINE="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
    echo "gpu: ${GPU_LINE:-unknown}; $(elapsed) s of ${SANF_DEADLINE_S:-330}; logs in $OUT"
    printf '%-10s %-11s %5s  %s\n' stage result secs detail
    printf '%s\n' "${ROWS[@]}"
    local d
    for d in "${DETAILS[@]}"; do echo; echo "$d"; done
    echo
    if ((VERDICT_FAIL)); then
      echo "RESULT: FAIL"
    elif ((VERDICT_INCOMPLETE)); then
      echo "RESULT: INCOMPLETE"
    else
      echo "RESULT: PASS"
    fi
  } | tee "$OUT/summary.txt"
  ((VERDICT_FAIL || VERDICT_INCOMPLETE)) && exit 1
  exit 0
}
trap 'row interrupted FAIL "$(elapsed)" "stopped by a signal"; VERDICT_FAIL=1; summary' INT TERM

# nvcc is often installed but not on PATH.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
NVCC="$(command -v nvcc || true)"
CUDA_ROOT=""
[ -n "$NVCC" ] && CUDA_ROOT="$(dirname "$(dirname "$(readlink -f "$NVCC")")")"
SAN="${SANF_CHECK_SANITIZER:-$(command -v compute-sanitizer || true)}"
if [ -z "$SAN" ] && [ -n "$CUDA_ROOT" ]; then
  for s in "$CUDA_ROOT/bin/compute-sanitizer" "$CUDA_ROOT/compute-sanitizer/compute-sanitizer"; do
    [ -x "$s" ] && SAN="$s" && break
  done
fi

# ---- preflight ----------------------------------------------------------------------------------------
GPU_LINE=""
SAN_STATUS="not checked"  # usable | unusable: why | not checked
SAN_PROBE_PID=""
TORCH_PID=""
if want preflight; then
  section "preflight"
  T0=$(now)
  PLOG="$OUT/preflight.log"
  REASON=""
  {
    echo "date: $(date -u)"
    echo "host: $(uname -a)"
    echo "cpus: $(nproc 2>/dev/null)"
    echo "stages: ${STAGES//,/ }; deadline ${SANF_DEADLINE_S:-330} s; build dir $BUILD; arch sm_$ARCH"
    echo "--- nvidia-smi"
    nvidia-smi 2>&1 || echo "nvidia-smi failed or is missing (rc $?)"
    echo "--- nvcc: ${NVCC:-not found}"
    [ -n "$NVCC" ] && "$NVCC" --version 2>&1 | tail -2
    echo "--- cmake / ninja / c++ / compute-sanitizer"
    cmake --version 2>&1 | head -1
    ninja --version 2>&1 || echo "ninja not found"
    c++ --version 2>&1 | head -1
    echo "compute-sanitizer: ${SAN:-not found}"
    echo "--- .devdeps (carried) and the system's own build dependencies"
    ls .devdeps/include .devdeps/lib 2>&1
    ls -d /usr/include/png.h /usr/include/jpeglib.h /usr/include/zlib.h /usr/include/CLI 2>&1
  } >"$PLOG" 2>&1
  GPU_LINE="$(nvidia-smi --query-gpu=name,driver_version,compute_mode,memory.total --format=csv,noheader 2>/dev/null |
    head -1)"
  CUDA_BANNER="$(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | head -1)"
  echo "gpu (nvidia-smi): ${GPU_LINE:-none (nvidia-smi missing or failed)}${CUDA_BANNER:+ ($CUDA_BANNER by the driver)}"
  echo "nvcc: ${NVCC:-not found}${NVCC:+ ($("$NVCC" --version 2>/dev/null | grep -o 'release [0-9.]*'))}"

  # cuBLAS and cuRAND: the headers and libraries of nvcc's toolkit (what CMake's CUDAToolkit finds).
  if [ -z "$NVCC" ]; then
    REASON="nvcc not found (PATH, /usr/local/cuda/bin)"
  else
    INC_DIRS=("$CUDA_ROOT/include" "$CUDA_ROOT/targets/x86_64-linux/include")
    LIB_DIRS=("$CUDA_ROOT/lib64" "$CUDA_ROOT/lib" "$CUDA_ROOT/targets/x86_64-linux/lib")
    MISSING=()
    version_of() {  # version_of CUBLAS_VER header: "13.1.0" from its _MAJOR, _MINOR, _PATCH defines
      awk -v p="$1" '$1 == "#define" && $2 ~ "^" p "_(MAJOR|MINOR|PATCH)$" {printf "%s%s", s, $3; s="."}' "$2"
    }
    for h in cuda_runtime.h cublas_v2.h cublas_api.h curand.h; do
      found=""
      for d in "${INC_DIRS[@]}"; do [ -f "$d/$h" ] && found="$d/$h" && break; done
      [ -z "$found" ] && MISSING+=("$h")
      echo "  header $h: ${found:-MISSING}" | tee -a "$PLOG"
      [ "$h" = cublas_api.h ] && [ -n "$found" ] && CUBLAS_H_VER="$(version_of CUBLAS_VER "$found")"
      [ "$h" = curand.h ] && [ -n "$found" ] && CURAND_H_VER="$(version_of CURAND_VER "$found")"
    done
    for l in libcudart.so libcublas.so libcublasLt.so libcurand.so; do
      found=""
      for d in "${LIB_DIRS[@]}"; do [ -e "$d/$l" ] && found="$d/$l" && break; done
      [ -z "$found" ] && MISSING+=("$l")
      echo "  library $l: ${found:-MISSING}${found:+ -> $(readlink -f "$found")}" | tee -a "$PLOG"
    done
    echo "cuBLAS headers ${CUBLAS_H_VER:-?}, cuRAND headers ${CURAND_H_VER:-?} (the toolkit at $CUDA_ROOT)"
    ((${#MISSING[@]})) && REASON="the CUDA toolkit at $CUDA_ROOT lacks ${MISSING[*]}"
  fi

  # The probe: built with nvcc in seconds, run under a time limit.
  PROBE="$WORK/cuda_probe"
  if [ -z "$REASON" ]; then
    echo "--- cuda_probe (nvcc -arch=sm_$ARCH)" >>"$PLOG"
    if run_capped 60 "$NVCC" -O1 -arch="sm_$ARCH" -cudart shared -o "$PROBE" tools/device/cuda_probe.cu \
      -lcublas -lcurand -Xlinker -rpath -Xlinker "$CUDA_ROOT/lib64" >>"$PLOG" 2>&1; then
      run_capped 60 "$PROBE" >"$WORK/probe.txt" 2>&1
      PROBE_RC=$?
      cat "$WORK/probe.txt" >>"$PLOG"
      sed 's/^/  /' "$WORK/probe.txt"
      if [ "$PROBE_RC" != 0 ]; then
        REASON="$(sed -n 's/^unusable: //p' "$WORK/probe.txt" | head -1)"
        [ -z "$REASON" ] && REASON="cuda_probe exited with $PROBE_RC (124: time limit)"
      else
        CC="$(sed -n 's/^compute_capability: \([0-9]*\)\.\([0-9]*\)$/\1\2/p' "$WORK/probe.txt")"
        [ -n "$CC" ] && [ "$CC" != "$ARCH" ] &&
          REASON="the device is sm_$CC and the build targets sm_$ARCH (set SANF_CUDA_ARCH=$CC)"
      fi
    else
      REASON="nvcc could not build tools/device/cuda_probe.cu (preflight.log has its errors)"
    fi
  fi

  if [ -z "$REASON" ]; then
    # In the background while the project builds: does compute-sanitizer work here (it refuses some
    # virtualised GPUs), and which PyTorch and timm the benchmarks will use.
    if [ -n "$SAN" ]; then
      (run_capped 60 "$SAN" --tool memcheck --error-exitcode 86 "$PROBE" --quick >"$WORK/sanitizer_probe.txt" 2>&1
       echo $? >"$WORK/sanitizer_probe.rc") &
      SAN_PROBE_PID=$!
    else
      SAN_STATUS="unusable: compute-sanitizer not found"
    fi
    (run_capped 90 python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
"available", torch.cuda.is_available())
try:
    import timm; print("timm", timm.__version__)
except ImportError as e:
    print("timm: not importable:", e)' >"$WORK/torch.txt" 2>&1) &
    TORCH_PID=$!
    probe() { sed -n "s/^$1: //p" "$WORK/probe.txt"; }
    row preflight ok $(($(now) - T0)) "$(probe device_0), driver API $(probe driver_api_version), runtime \
$(probe runtime_version), compute mode $(probe compute_mode); cuBLAS ${CUBLAS_H_VER:-?}, cuRAND ${CURAND_H_VER:-?}"
    echo "preflight: CUDA is usable"
  else
    echo "preflight: CUDA is NOT usable: $REASON"
    echo "preflight failed: $REASON" >>"$PLOG"
    row preflight FAIL $(($(now) - T0)) "$REASON"
    VERDICT_FAIL=1
    if [ "${SANF_CHECK_SKIP_PREFLIGHT:-0}" != 1 ]; then
      echo "stopping here (SANF_CHECK_SKIP_PREFLIGHT=1 goes on, for a dry run)"
      for st in build tests memcheck demo bench; do want "$st" && row "$st" "not run" 0 "the preflight failed"; done
      summary
    fi
    echo "SANF_CHECK_SKIP_PREFLIGHT=1: going on regardless (a dry run)"
  fi
fi

# ---- build: configure, then only the targets the check runs --------------------------------------------
CUDA_BIN="$BUILD/tests/test_cuda"
if want build; then
  section "build"
  T0=$(now)
  BLOG="$OUT/build.log"
  echo "---- configure" >"$BLOG"
  GEN=(-G Ninja)
  BUILD_CMD=(ninja -C "$BUILD" -j"$JOBS" -k 0)
  if ! command -v ninja >/dev/null 2>&1; then
    echo "ninja not found: using Unix Makefiles" | tee -a "$BLOG"
    GEN=(-G "Unix Makefiles")
    BUILD_CMD=(make -C "$BUILD" -j"$JOBS" -k)
  fi
  # NCCL: the toolkit's when it has one, else the one PyTorch's wheels bring (nvidia-nccl), given to CMake by
  # path; the executables then find libnccl through their build RPATH.
  NCCL_ARGS=()
  if [ -n "$CUDA_ROOT" ] && ! ls "$CUDA_ROOT"/include/nccl.h "$CUDA_ROOT"/targets/*/include/nccl.h >/dev/null 2>&1; then
    NCCL_PY="$(python3 -c 'import nvidia.nccl as m; print(list(m.__path__)[0])' 2>/dev/null)"
    NCCL_LIB="$(ls "$NCCL_PY"/lib/libnccl.so* 2>/dev/null | head -1)"
    if [ -n "$NCCL_PY" ] && [ -f "$NCCL_PY/include/nccl.h" ] && [ -n "$NCCL_LIB" ]; then
      NCCL_ARGS=(-DSANF_NCCL_INCLUDE_DIR="$NCCL_PY/include" -DSANF_NCCL_LIBRARY="$NCCL_LIB")
      echo "NCCL: not in the toolkit; using PyTorch's ($NCCL_LIB)" | tee -a "$BLOG"
    else
      echo "NCCL: neither in the toolkit nor in python3's nvidia.nccl" | tee -a "$BLOG"
    fi
  fi
  echo "MPI launcher: $(command -v mpirun || echo none)" | tee -a "$BLOG"
  TARGETS=(test_cuda sanf test_dist)
  for f in bench/*.cpp; do TARGETS+=("$(basename "$f" .cpp)"); done
  [ "${SANF_DEVICE_ALL_TESTS:-0}" = 1 ] && TARGETS=(all)
  run_capped "$(budget 120 30)" cmake -S . -B "$BUILD" "${GEN[@]}" -DSANF_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$ARCH-real" -DCMAKE_CUDA_FLAGS=-lineinfo -DCMAKE_CUDA_RUNTIME_LIBRARY=Shared \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$ROOT/.devdeps" ${NVCC:+-DCMAKE_CUDA_COMPILER="$NVCC"} \
    "${NCCL_ARGS[@]}" >>"$BLOG" 2>&1
  CONFIGURE_RC=$?
  echo "configure rc: $CONFIGURE_RC"
  grep -E -- '-- sanf: (no )?(MPI|NCCL)' "$BLOG" | sed 's/^-- //'  # whether test_dist's NCCL case can run
  BUILD_RC=skipped
  RUNTIME_NOTE=""
  if [ "$CONFIGURE_RC" = 0 ]; then
    echo "---- build: ${TARGETS[*]}" >>"$BLOG"
    # Keep going past errors, so that whatever did build can still run.
    run_capped "$(budget 240 60)" "${BUILD_CMD[@]}" "${TARGETS[@]}" >>"$BLOG" 2>&1
    BUILD_RC=$?
    grep -E "error:|FAILED:|fatal error|No rule to make" "$BLOG" | head -40
    echo "build rc: $BUILD_RC (targets: ${TARGETS[*]})"
    # One CUDA runtime per executable: the shared libcudart (ldd), not also the static one, which would
    # define the cuda* entry points inside the executable (nm).
    echo "---- CUDA runtime linked" >>"$BLOG"
    BOTH=()
    for exe in "$CUDA_BIN" "$BUILD/sanf" "$BUILD"/bench_*; do
      [ -x "$exe" ] || continue
      shared="$(ldd "$exe" 2>/dev/null | grep -o 'libcudart\.so[.0-9]*' | head -1)"
      static="$(nm "$exe" 2>/dev/null | grep -cE ' T cuda(Malloc|LaunchKernel|GetDeviceCount)$')"
      echo "$exe: shared ${shared:-none}, static entry points defined: $static" >>"$BLOG"
      if [ -n "$shared" ] && [ "$static" -gt 0 ]; then BOTH+=("$(basename "$exe")"); fi
    done
    STATIC_LINKS="$(grep -c 'cudart_static' "$BUILD/build.ninja" 2>/dev/null)"
    STATIC_LINKS="${STATIC_LINKS:-0}"
    echo "build.ninja lines naming cudart_static: $STATIC_LINKS" >>"$BLOG"
    if ((${#BOTH[@]})) || [ "$STATIC_LINKS" != 0 ]; then
      RUNTIME_NOTE="both CUDA runtimes linked (${BOTH[*]:-build.ninja names cudart_static})"
    else
      RUNTIME_NOTE="one CUDA runtime (shared libcudart)"
    fi
    echo "cuda runtime: $RUNTIME_NOTE"
  fi
  if [ "$CONFIGURE_RC" = 0 ] && [ "$BUILD_RC" = 0 ] && [[ "$RUNTIME_NOTE" == one* ]]; then
    row build ok $(($(now) - T0)) "${TARGETS[*]}; $RUNTIME_NOTE"
  else
    VERDICT_FAIL=1
    row build FAIL $(($(now) - T0)) \
      "configure rc $CONFIGURE_RC, build rc $BUILD_RC (124: time limit)${RUNTIME_NOTE:+; $RUNTIME_NOTE}"
  fi
fi

# Fashion-MNIST where the tests and the demo expect it (Debian's path), from the copy in .devdeps.
FMNIST=/usr/share/datasets/fashion-mnist
install_fmnist() {
  if [ ! -d "$FMNIST" ] && [ -d .devdeps/datasets/fashion-mnist ]; then
    mkdir -p "$(dirname "$FMNIST")" && cp -r .devdeps/datasets/fashion-mnist "$FMNIST" ||
      echo "could not install Fashion-MNIST at $FMNIST"
  fi
  [ -d "$FMNIST" ]
}

# ---- tests: the CUDA test cases through ctest, once --------------------------------------------------------
# One process per test case: a crash or a sticky CUDA error (an illegal address poisons the context) fails
# that case alone, and the log names it. CUDA_LAUNCH_BLOCKING=1 makes every launch synchronous, so an error
# is reported by the launch that caused it. With SANF_DEVICE_ALL_TESTS=1 the CPU tests run too; those that
# read Fashion-MNIST expect it at /usr/share/datasets/fashion-mnist (make_devdeps.sh copies it into .devdeps,
# installed from there); where that cannot be done, the apps tests are left out and the log says so.
TESTS_OK=0
FAILED_ALL=()
# What `sanf bench vit` tries of the opt-in paths: both settings, or off when the path's tests failed.
FUSED_SETTING=both LT_SETTING=both BENCH_DESPITE=""
if want tests; then
  section "tests"
  T0=$(now)
  CLOG="$OUT/ctest.log"
  # The CUDA cases, and the communicator's one-process test, whose NCCL loopback case runs the NCCL path
  # on the one GPU (when CMake found NCCL: build.log's "sanf: NCCL" line).
  SELECT=(-R "${SANF_CHECK_TESTS:-^cuda|^dist: communicator, one process}")
  if [ "${SANF_DEVICE_ALL_TESTS:-0}" = 1 ] && [ -z "${SANF_CHECK_TESTS:-}" ]; then
    SELECT=()
    if ! install_fmnist; then
      SELECT=(-E '^apps')
      echo "no $FMNIST: the apps tests are left out of ctest" | tee -a "$CLOG"
    fi
  fi
  if [ -f "$BUILD/CTestTestfile.cmake" ]; then
    rm -f "$BUILD/Testing/Temporary/LastTestsFailed.log"
    CUDA_LAUNCH_BLOCKING=1 run_capped "$(budget 180 60)" ctest --test-dir "$BUILD" "${SELECT[@]}" -j8 \
      --no-tests=error --timeout 120 -V >>"$CLOG" 2>&1
    CTEST_RC=$?
    RESULT_LINE="$(grep -E "tests passed|No tests were found" "$CLOG" | tail -1)"
    SKIPPED="$(grep -cE '\((Skipped|Disabled)\)$' "$CLOG")"
    [ -f "$BUILD/Testing/Temporary/LastTestsFailed.log" ] &&
      mapfile -t FAILED_ALL < <(cut -d: -f2- "$BUILD/Testing/Temporary/LastTestsFailed.log")
    grep -A200 -E "^The following tests (FAILED|did not run):" "$CLOG" | grep -E '^\s+[0-9]+ - ' | head -30
    echo "ctest rc $CTEST_RC: ${RESULT_LINE:-no result line}; skipped: $SKIPPED"
    DETAIL="${RESULT_LINE:-no result (ctest rc $CTEST_RC)}; skipped $SKIPPED; ctest rc $CTEST_RC"
    if [ "$CTEST_RC" = 0 ] && [ "$SKIPPED" = 0 ] && [[ "$RESULT_LINE" == *"tests passed"* ]]; then
      TESTS_OK=1
      row tests ok $(($(now) - T0)) "$DETAIL"
    else
      VERDICT_FAIL=1
      row tests FAIL $(($(now) - T0)) "$DETAIL"
      # Failures only in the opt-in paths (the fused attention, cuBLASLt's epilogues; off by default) do not
      # hold back the benchmarks: those run with the failed path switched off.
      OPTIN_ONLY=$(( ${#FAILED_ALL[@]} > 0 ))
      for f in "${FAILED_ALL[@]}"; do
        case "$f" in
          *"fused attention"*) FUSED_SETTING=off ;;
          *cuBLASLt*) LT_SETTING=off ;;
          *) OPTIN_ONLY=0 ;;
        esac
      done
      if ((OPTIN_ONLY)); then
        BENCH_DESPITE="only opt-in paths failed (fused attention: ${FUSED_SETTING}, cuBLASLt: ${LT_SETTING})"
        echo "benchmarks will run: $BENCH_DESPITE"
      fi
      if ((${#FAILED_ALL[@]})); then
        LIST=""
        for ((i = 0; i < ${#FAILED_ALL[@]} && i < 25; ++i)); do LIST+=$'\n'"  $((i + 1)). ${FAILED_ALL[i]}"; done
        DETAILS+=("failed tests (${#FAILED_ALL[@]}; memcheck's job failed-N reruns the Nth):$LIST")
      fi
    fi
  else
    echo "no $BUILD/CTestTestfile.cmake: nothing to test"
    VERDICT_FAIL=1
    row tests FAIL 0 "no CTestTestfile.cmake in $BUILD (the build stage did not configure it)"
  fi
else
  VERDICT_INCOMPLETE=1
  row tests "not run" 0 "not in SANF_CHECK_STAGES"
fi

# ---- memcheck: compute-sanitizer over failing cases and our own kernels ----------------------------------
# memcheck: out-of-bounds and misaligned accesses, and CUDA API errors; racecheck: shared-memory hazards.
# Each job is one test_cuda process (the failing cases each alone), in parallel; reports go to memcheck.log.
# An error reported by compute-sanitizer fails the run; a job that ran out of time, or ended without the
# sanitizer's summary, leaves the run INCOMPLETE.
MEMCHECK_DEFAULT="attention=cuda bf16: the fused attention kernel*,cuda bf16: a bf16 ViT with the fused attention*"
MEMCHECK_DEFAULT+=",cuda bf16: split_qkv_bf16*"
MEMCHECK_DEFAULT+=";reduce-softmax=cuda parity: sum,cuda parity: mean,cuda parity: max*,cuda parity: reductions*"
MEMCHECK_DEFAULT+=",cuda parity: split reductions*,cuda parity: sum_squares*"
MEMCHECK_DEFAULT+=",cuda parity: softmax and log_softmax,cuda bf16: softmax_bf16*"
MEMCHECK_DEFAULT+=";layernorm-pool-index=cuda parity: layer_norm,cuda bf16: layer_norm_bf16*"
MEMCHECK_DEFAULT+=",cuda parity: adaptive_avg_pool_tokens"
MEMCHECK_DEFAULT+=",cuda parity: index_select,cuda parity: patchify"
MEMCHECK_DEFAULT+=";copy-elementwise=cuda parity: copy*,cuda parity: to(dtype)*,cuda parity: views*"
MEMCHECK_DEFAULT+=",cuda parity: factories and fill,cuda parity: elementwise and copy kernels past the grid cap*"
MEMCHECK_DEFAULT+=",cuda parity: add,cuda parity: gelu,cuda parity: concat*"
MEMCHECK_DEFAULT+=";random=cuda random*"
MEMCHECK_DEFAULT+=";gemm-epilogue=cuda bf16: linear_bf16*"
RACECHECK_DEFAULT="attention=cuda bf16: the fused attention kernel*"
if want memcheck; then
  section "memcheck"
  T0=$(now)
  MLOG="$OUT/memcheck.log"
  : >"$MLOG"
  if [ -n "$SAN_PROBE_PID" ]; then
    wait "$SAN_PROBE_PID"
    if [ "$(cat "$WORK/sanitizer_probe.rc" 2>/dev/null)" = 0 ]; then
      SAN_STATUS="usable"
    else
      SAN_STATUS="unusable: $(grep -v '^=* *$' "$WORK/sanitizer_probe.txt" | grep -m1 -iE 'error|not supported|fail' ||
        echo "the probe under memcheck exited with $(cat "$WORK/sanitizer_probe.rc" 2>/dev/null)")"
    fi
    { echo "---- compute-sanitizer on cuda_probe --quick: $SAN_STATUS"; cat "$WORK/sanitizer_probe.txt"; } >>"$MLOG"
  elif [ "$SAN_STATUS" = "not checked" ] && [ -z "$SAN" ]; then
    SAN_STATUS="unusable: compute-sanitizer not found"
  fi
  if [[ "$SAN_STATUS" == unusable* ]]; then
    echo "compute-sanitizer: $SAN_STATUS"
    VERDICT_INCOMPLETE=1
    row memcheck "not run" $(($(now) - T0)) "compute-sanitizer $SAN_STATUS"
  elif [ ! -x "$CUDA_BIN" ]; then
    VERDICT_INCOMPLETE=1
    row memcheck "not run" 0 "no $CUDA_BIN"
  else
    # The jobs: label, tool, doctest filter (with --test-case= for a single case, commas escaped).
    JOB_LABEL=() JOB_TOOL=() JOB_ARG=()
    # The failing CUDA cases (ctest names them "cuda:" + the doctest name), each alone.
    MAX_FAILED="${SANF_CHECK_MEMCHECK_FAILED_MAX:-8}"
    n_failed=0
    for ((i = 0; i < ${#FAILED_ALL[@]}; ++i)); do
      [[ "${FAILED_ALL[i]}" == cuda* ]] || continue
      n_failed=$((n_failed + 1))
      ((n_failed > MAX_FAILED)) && continue
      name="${FAILED_ALL[i]#cuda:}"
      name="${name# }"
      JOB_LABEL+=("failed-$((i + 1))") JOB_TOOL+=(memcheck) JOB_ARG+=("--test-case=${name//,/\\,}")
    done
    ((n_failed > MAX_FAILED)) &&
      echo "$((n_failed - MAX_FAILED)) more failing CUDA cases not rerun under memcheck" | tee -a "$MLOG"
    add_jobs() {  # add_jobs TOOL 'label=filter;label=filter'
      local tool=$1 spec item
      local -a items
      IFS=';' read -r -a items <<<"$2"
      for item in "${items[@]}"; do
        [ -z "$item" ] && continue
        spec="${item#*=}"
        JOB_LABEL+=("$tool-${item%%=*}") JOB_TOOL+=("$tool") JOB_ARG+=("--test-case=$spec")
      done
    }
    add_jobs memcheck "${SANF_CHECK_MEMCHECK-$MEMCHECK_DEFAULT}"
    add_jobs racecheck "${SANF_CHECK_RACECHECK-$RACECHECK_DEFAULT}"
    CAP="${SANF_CHECK_MEMCHECK_S:-75}"
    echo "${#JOB_LABEL[@]} jobs, $PARALLEL at a time, at most $(budget "$CAP" 20) s each"
    running=0
    PIDS=()
    for ((j = 0; j < ${#JOB_LABEL[@]}; ++j)); do
      if ((running >= PARALLEL)); then
        wait -n  # (one job done; the preflight's background PyTorch query may count as one)
        running=$((running - 1))
      fi
      (
        t0=$(now)
        OMP_NUM_THREADS=2 run_capped "$(budget "$CAP" 20)" "$SAN" --tool "${JOB_TOOL[j]}" --print-limit 10 \
          --error-exitcode 86 "$CUDA_BIN" "${JOB_ARG[j]}" >"$WORK/job$j.log" 2>&1
        echo "$? $(($(now) - t0))" >"$WORK/job$j.rc"
      ) &
      PIDS+=($!)
      running=$((running + 1))
    done
    wait "${PIDS[@]}"
    JOB_FAIL=0 JOB_TIMEOUT=0 JOB_NOREPORT=0
    TABLE="$(printf '%-30s %-9s %4s %5s  %s' job tool rc secs "sanitizer summary | test cases")"
    for ((j = 0; j < ${#JOB_LABEL[@]}; ++j)); do
      read -r rc secs <"$WORK/job$j.rc" || rc=unknown secs='?'
      san_sum="$(grep -E '(ERROR|RACECHECK) SUMMARY' "$WORK/job$j.log" | tail -1 | sed 's/^=* *//')"
      cases="$(grep -E '^\[doctest\] test cases:' "$WORK/job$j.log" | tail -1 | sed 's/^\[doctest\] test cases: *//')"
      errors="$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) error.*/\1/p; s/.*RACECHECK SUMMARY: .*(\([0-9]*\) error.*/\1/p' \
        "$WORK/job$j.log" | tail -1)"
      if [ "$rc" = 86 ] || [ "${errors:-0}" != 0 ]; then
        JOB_FAIL=$((JOB_FAIL + 1))
      elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        JOB_TIMEOUT=$((JOB_TIMEOUT + 1))
      elif [ -z "$san_sum" ]; then
        JOB_NOREPORT=$((JOB_NOREPORT + 1))  # compute-sanitizer did not get to its summary
      fi
      TABLE+=$'\n'"$(printf '%-30s %-9s %4s %5s  %s | %s' "${JOB_LABEL[j]}" "${JOB_TOOL[j]}" "$rc" "$secs" \
        "${san_sum:-no sanitizer summary}" "${cases:-no doctest summary}")"
      {
        echo
        echo "==== ${JOB_LABEL[j]}: compute-sanitizer --tool ${JOB_TOOL[j]} $CUDA_BIN '${JOB_ARG[j]}' (rc $rc, $secs s)"
        cat "$WORK/job$j.log"
      } >>"$MLOG"
    done
    echo "$TABLE"
    DETAILS+=("compute-sanitizer (rc 86: errors found, 124: time limit):"$'\n'"$TABLE")
    DETAIL="${#JOB_LABEL[@]} jobs: $JOB_FAIL with errors, $JOB_TIMEOUT out of time, $JOB_NOREPORT without a report"
    if ((JOB_FAIL)); then
      VERDICT_FAIL=1
      row memcheck FAIL $(($(now) - T0)) "$DETAIL"
    elif ((JOB_TIMEOUT || JOB_NOREPORT)); then
      VERDICT_INCOMPLETE=1
      row memcheck partial $(($(now) - T0)) "$DETAIL"
    else
      row memcheck ok $(($(now) - T0)) "$DETAIL"
    fi
  fi
else
  VERDICT_INCOMPLETE=1
  row memcheck "not run" 0 "not in SANF_CHECK_STAGES"
fi

# ---- demo: `sanf demo --device cuda` against the CPU's table ----------------------------------------------
# The README's main job on the GPU: all 10 Fashion-MNIST classes, the same seeds (weights are drawn on the
# host, so the GPU starts from the CPU's exact weights). Each class's AUROC must be within SANF_CHECK_DEMO_TOL
# (0.005) of tools/device/demo_cpu_results.csv, which a CPU run of the same command wrote. Fresh feature cache,
# so the wall time includes the backbone; its output in demo.log.
if want demo; then
  section "demo"
  T0=$(now)
  DLOG="$OUT/demo.log"
  REF=tools/device/demo_cpu_results.csv
  if [ ! -x "$BUILD/sanf" ]; then
    VERDICT_INCOMPLETE=1
    row demo "not run" 0 "no $BUILD/sanf"
  elif ! install_fmnist; then
    VERDICT_INCOMPLETE=1
    row demo "not run" 0 "no Fashion-MNIST at $FMNIST (make_devdeps.sh copies it into .devdeps)"
  else
    rm -rf "$WORK/demo" "$WORK/demo-cache"
    run_capped "$(budget 150 60)" "$BUILD/sanf" demo --device cuda --out "$WORK/demo" --cache-dir "$WORK/demo-cache" \
      >"$DLOG" 2>&1
    DEMO_RC=$?
    DEMO_S=$(($(now) - T0))
    if [ "$DEMO_RC" != 0 ] || [ ! -f "$WORK/demo/results.csv" ]; then
      VERDICT_FAIL=1
      tail -5 "$DLOG"
      row demo FAIL "$DEMO_S" "sanf demo --device cuda exited with $DEMO_RC (124: time limit)"
    else
      { echo "---- results.csv"; cat "$WORK/demo/results.csv"; } >>"$DLOG"
      # class,name,auroc,... in both files: the largest difference of the auroc column, row by row.
      CMP="$(awk -F, -v tol="${SANF_CHECK_DEMO_TOL:-0.005}" '
        NR == FNR { if (FNR > 1) ref[$1] = $3; next }
        FNR > 1 { if (!($1 in ref)) { missing++; next }
                  d = $3 - ref[$1]; if (d < 0) d = -d; if (d > worst) { worst = d; at = $1 } ; n++ }
        END { printf "%d classes compared, largest |GPU - CPU| AUROC %.4f (class %s)%s, tolerance %s\n", n, worst,
                     at, missing ? ", " missing " not in the reference" : "", tol;
              exit (n < 11 || missing || worst > tol) }' "$REF" "$WORK/demo/results.csv")"
      CMP_RC=$?
      sed -n '/one-class AUROC/,/results.csv/p' "$DLOG"
      echo "demo: $CMP; wall ${DEMO_S} s"
      if [ "$CMP_RC" = 0 ]; then
        row demo ok "$DEMO_S" "$CMP"
      else
        VERDICT_FAIL=1
        row demo FAIL "$DEMO_S" "$CMP"
      fi
    fi
  fi
else
  VERDICT_INCOMPLETE=1
  row demo "not run" 0 "not in SANF_CHECK_STAGES"
fi

# ---- bench: only when the tests passed (or only opt-in paths failed); most important first ----------------
# Each command at most its cap or what is left of the deadline; one that would start within 15 s of the
# deadline is skipped (and listed in bench.err). Benchmark failures are reported and do not change RESULT.
if want bench; then
  section "bench"
  T0=$(now)
  BENCH_OUT="$OUT/bench.jsonl"
  BENCH_ERR="$OUT/bench.err"
  if [ "$TESTS_OK" != 1 ] && [ "${SANF_CHECK_BENCH_ALWAYS:-0}" != 1 ] && [ -z "$BENCH_DESPITE" ]; then
    echo "benchmarks skipped: the tests did not pass (SANF_CHECK_BENCH_ALWAYS=1 runs them regardless)"
    row bench "not run" 0 "the tests did not pass"
  elif [ ! -x "$BUILD/sanf" ]; then
    row bench FAIL 0 "no $BUILD/sanf"
  else
    : >"$BENCH_OUT"
    : >"$BENCH_ERR"
    if [ -n "$TORCH_PID" ]; then
      wait "$TORCH_PID" 2>/dev/null  # (already reaped if the memcheck stage's wait -n took it)
      echo "PyTorch: $(tr '\n' ' ' <"$WORK/torch.txt" | cut -c1-200)"
    fi
    BENCH_RUN=0 BENCH_FAILED=0 BENCH_SKIPPED=0
    run_bench() {  # run_bench CAP CMD...
      local cap=$1 rc desc
      shift
      desc="${SANF_FUSED_ATTENTION:+SANF_FUSED_ATTENTION=$SANF_FUSED_ATTENTION }$*"
      if (($(now) > DEADLINE - 15)); then
        echo "skipped (deadline): $desc" | tee -a "$BENCH_ERR"
        BENCH_SKIPPED=$((BENCH_SKIPPED + 1))
        return
      fi
      echo "+ $desc" >>"$BENCH_ERR"
      PYTHONUNBUFFERED=1 run_capped "$(budget "$cap")" "$@" >>"$BENCH_OUT" 2>>"$BENCH_ERR"
      rc=$?
      BENCH_RUN=$((BENCH_RUN + 1))
      if [ "$rc" != 0 ]; then
        BENCH_FAILED=$((BENCH_FAILED + 1))
        echo "failed (rc $rc$( ((rc == 124 || rc == 137)) && echo ": time limit")): $desc" | tee -a "$BENCH_ERR"
      fi
    }
    PY="$(command -v python3 || echo python3)"
    VIT=(bench vit --arch vit-large --device cuda --reps 5)
    BENCH_GROUPS="${SANF_CHECK_BENCH:-vit,flow,ops,profile}"
    for g in ${BENCH_GROUPS//,/ }; do
      case "$g" in
        vit)  # ViT-L/16 forward: bf16 (fused attention off, on x cuBLASLt off, on), TF32 and f32 (cuBLASLt
              # off, on); one model per precision (a random ViT-L takes seconds to draw on the host); then
              # PyTorch, one process
          run_bench 120 "$BUILD/sanf" "${VIT[@]}" --batch 64,256 --precision bf16 \
            --fused-attention "$FUSED_SETTING" --cublaslt "$LT_SETTING"
          run_bench 60 "$BUILD/sanf" "${VIT[@]}" --batch 64,256 --precision tf32 --cublaslt "$LT_SETTING"
          run_bench 60 "$BUILD/sanf" "${VIT[@]}" --batch 64 --precision f32 --cublaslt "$LT_SETTING"
          run_bench 150 "$PY" bench/bench_vit_torch.py --arch vit-large --device cuda --reps 5 \
            --configs bf16:64,bf16:256,tf32:64,tf32:256,f32:64
          ;;
        flow)  # the flow's training step and scoring pass at ViT-L width (D = H = 1024, batch 32); then at
               # the demo's shape (D = 192, N = 49), on the GPU and on this machine's CPU: where the launches,
               # not the arithmetic, set the time (the table's us/call column says how much)
          run_bench 60 "$BUILD/sanf" bench flow --device cuda --dim 1024
          run_bench 90 "$PY" bench/bench_flow_torch.py cuda --dim 1024
          run_bench 30 "$BUILD/sanf" bench flow --device cuda --dim 192 --tokens 49 --quick
          run_bench 30 "$BUILD/sanf" bench flow --device cpu --dim 192 --tokens 49 --quick
          ;;
        ops)  # per-op times at ViT-L shapes: which composites deserve a fused kernel
          for exe in "$BUILD"/bench_*; do [ -x "$exe" ] && run_bench 60 "$exe" cuda; done
          run_bench 90 "$PY" bench/bench_ops_torch.py cuda
          ;;
        profile)  # where a bf16 ViT-L forward spends its time: Nsight Compute's duration of every kernel
                  # (two forwards: the warm-up and one timed), summed per kernel name, largest first
          NCU="$(command -v ncu || ls "$CUDA_ROOT"/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)"
          if [ -z "$NCU" ]; then
            echo "profile: no ncu found" | tee -a "$BENCH_ERR"
          else
            # Not through run_bench: the profiled run's own JSON line (its time inflated by the profiler)
            # must not reach bench.jsonl.
            if (($(now) > DEADLINE - 15)); then
              echo "skipped (deadline): ncu profile" | tee -a "$BENCH_ERR"
              BENCH_SKIPPED=$((BENCH_SKIPPED + 1))
            else
              # With the opt-in paths on, those whose tests passed: the profile of the fastest forward so far.
              PROFILE_PATHS="fused attention $([ "$FUSED_SETTING" = off ] && echo off || echo on)"
              PROFILE_PATHS+=", cuBLASLt $([ "$LT_SETTING" = off ] && echo off || echo on)"
              echo "+ ncu profile of sanf bench vit (bf16, batch 64; $PROFILE_PATHS)" >>"$BENCH_ERR"
              run_capped "$(budget 120)" "$NCU" --clock-control none --csv --metrics gpu__time_duration.sum \
                --log-file "$WORK/ncu.csv" "$BUILD/sanf" bench vit --arch vit-large --device cuda --batch 64 \
                --reps 1 --precision bf16 --fused-attention "$([ "$FUSED_SETTING" = off ] && echo off || echo on)" \
                --cublaslt "$([ "$LT_SETTING" = off ] && echo off || echo on)" >"$WORK/ncu.stdout" 2>&1
              rc=$?
              BENCH_RUN=$((BENCH_RUN + 1))
              if [ "$rc" != 0 ]; then
                BENCH_FAILED=$((BENCH_FAILED + 1))
                { echo "failed (rc $rc): ncu profile"; tail -5 "$WORK/ncu.stdout"; } | tee -a "$BENCH_ERR"
              fi
            fi
            { echo "---- ncu: kernel time per name, bf16 ViT-L/16 batch 64, two forwards (${PROFILE_PATHS:-})"
              "$PY" tools/device/ncu_table.py "$WORK/ncu.csv" 2>&1 | head -40; } | tee -a "$BENCH_ERR"
          fi
          ;;
        *) echo "unknown benchmark group '$g' (vit, flow, ops, profile)" | tee -a "$BENCH_ERR" ;;
      esac
    done
    NLINES="$(grep -c '^{' "$BENCH_OUT")"
    TABLE="$("$PY" tools/device/bench_table.py "$BENCH_OUT" 2>&1 | head -60)"
    echo "$TABLE"
    DETAILS+=("benchmarks ($BENCH_OUT):"$'\n'"$TABLE")
    DETAIL="$BENCH_RUN commands, $BENCH_FAILED failed, $BENCH_SKIPPED skipped (deadline); $NLINES JSON lines"
    if ((BENCH_FAILED || BENCH_SKIPPED)); then
      row bench partial $(($(now) - T0)) "$DETAIL"
    else
      row bench ok $(($(now) - T0)) "$DETAIL"
    fi
  fi
fi

summary
