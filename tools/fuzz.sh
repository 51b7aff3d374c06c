#!/usr/bin/env bash
# tools/fuzz.sh [SECONDS]: build the libFuzzer target for the safetensors reader (fuzz/fuzz_safetensors.cpp)
# with AddressSanitizer + UndefinedBehaviorSanitizer and run it for SECONDS (default 60).
#
# Needs clang++ with libFuzzer (Debian: clang and libclang-rt-14-dev, which holds libclang_rt.fuzzer) and
# nlohmann-json3-dev. The target is compiled together with core/*.cpp (core needs nothing else). It starts
# from the seeds in fuzz/corpus/ (committed, tiny) and keeps what it finds in build-fuzz/corpus/, which later
# runs reuse. Exits non-zero on any finding: a crash, a sanitizer report, an exception other than
# sanf::Error, a timeout (10 s per input) or an out-of-memory (2 GiB); the input is saved as
# build-fuzz/crash-* (or leak-*, timeout-*, oom-*) and can be replayed with
#   build-fuzz/fuzz_safetensors build-fuzz/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
out=build-fuzz
cxx=${FUZZ_CXX:-clang++}
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I.)

if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "fuzz.sh: $cxx not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi
mkdir -p "$out/obj" "$out/corpus"

# Object files are rebuilt only when their source or a header under core/ is newer.
objs=()
pids=()
for src in core/*.cpp fuzz/fuzz_safetensors.cpp; do
  obj="$out/obj/$(basename "${src%.cpp}").o"
  objs+=("$obj")
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find core -name '*.h' -newer "$obj" -print -quit)" ]; then
    "$cxx" "${flags[@]}" -c "$src" -o "$obj" &
    pids+=($!)
    # at most two compilers at a time
    if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  fi
done
for p in "${pids[@]}"; do wait "$p"; done
"$cxx" "${flags[@]}" "${objs[@]}" -o "$out/fuzz_safetensors"

echo "fuzz.sh: running fuzz_safetensors for $secs s" >&2
# The first corpus directory receives new inputs; fuzz/corpus/ only seeds it.
"$out/fuzz_safetensors" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
  -dict=fuzz/safetensors.dict -artifact_prefix="$out/" -print_final_stats=1 "$out/corpus" fuzz/corpus
echo "fuzz.sh: no findings in $secs s" >&2
