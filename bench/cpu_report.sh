#!/usr/bin/env bash
# bench/cpu_report.sh [ROUNDS]: every CPU benchmark and its peer in one session, then the table of
# docs/PERFORMANCE.md ("CPU figures") printed from the JSON lines.
#
#   bash bench/cpu_report.sh 3 > /tmp/table.md      (JSON lines: bench-results/cpu-<time>.jsonl)
#
# Needs a release build of sanf (./run build; SANF=path overrides build/sanf) and, for the peers, Debian's
# python3-torch, python3-torchvision, python3-numpy and libopenblas0-pthread (which makes OpenBLAS the
# libblas.so.3 that numpy and Debian's torch load; without it both use the reference BLAS and the peer
# figures are meaningless). PYTHON defaults to /usr/bin/python3 (Debian's, not a pyenv or venv one).
# A missing peer is reported and skipped; the sanf figures are still taken.
#
# Pairing: each round runs sanf and then its peers back to back on the same work, so a disturbance by other
# jobs on a shared machine tends to hit both; the table gives, per figure, the median over rounds, and each
# ratio is the median of the per-round ratios. Debian's torch calls OpenBLAS, which starts its own threads
# besides torch's, so each PyTorch peer runs twice, with as many torch threads as cores and with one; the
# ratios are taken against the faster of the two in each round. The environment stays as it is
# (OPENBLAS_CORETYPE included),
# except for the one numpy run labelled "coretype unset", which unsets OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE for that command only.
set -uo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-3}
sanf=${SANF:-build/sanf}
py=${PYTHON:-/usr/bin/python3}
mkdir -p bench-results
out=bench-results/cpu-$(date -u +%Y%m%dT%H%M%SZ).jsonl
[ -x "$sanf" ] || { echo "cpu_report: $sanf not found; run ./run build first" >&2; exit 1; }

have_py() { "$py" -c "import $1" >/dev/null 2>&1; }
peer_torch=1 peer_numpy=1
have_py torch && have_py torchvision || { peer_torch=0; echo "cpu_report: no torch/torchvision for $py: PyTorch peers skipped" >&2; }
have_py numpy || { peer_numpy=0; echo "cpu_report: no numpy for $py: OpenBLAS peer skipped" >&2; }

# Runs a command, tagging each JSON line it prints with the round; progress on stderr.
run() {
  local round=$1
  shift
  echo "cpu_report: round $round: $*" >&2
  "$@" | while IFS= read -r line; do
    case "$line" in "{"*) echo "${line%\}}, \"round\": $round}" ;; esac
  done >>"$out"
}

{
  echo "{\"what\": \"machine\", \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\", \"cores\": $(nproc), \"date\": \"$(date -u +%FT%TZ)\", \"commit\": \"$(git rev-parse --short HEAD 2>/dev/null)\", \"OPENBLAS_CORETYPE\": \"${OPENBLAS_CORETYPE:-}\"}"
} >"$out"
run 0 "$sanf" bench fma
for r in $(seq 1 "$rounds"); do
  run "$r" "$sanf" bench gemm
  if ((peer_numpy)); then
    run "$r" "$py" bench/bench_gemm_numpy.py --label as-configured
    run "$r" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" bench/bench_gemm_numpy.py --label "coretype unset"
  fi
  run "$r" "$sanf" bench vit --arch vit-base --batch 8 --reps 3
  for t in "$(nproc)" 1; do
    ((peer_torch)) && run "$r" env TORCH_THREADS="$t" "$py" bench/bench_vit_torch.py --arch vit-base --batch 8 --reps 3
  done
  run "$r" "$sanf" bench flow
  for t in "$(nproc)" 1; do
    ((peer_torch)) && run "$r" env TORCH_THREADS="$t" "$py" bench/bench_flow_torch.py
  done
done
# Peak memory of extraction at two dataset sizes (one process each: the peak is per process).
run 0 "$sanf" bench extract --limit 1000
run 0 "$sanf" bench extract --limit 5000
# sanf predict end to end (PNG files on disk to predictions.csv) on the same images and backbone.
run 0 "$sanf" bench predict --limit 1000
echo "cpu_report: wrote $out" >&2
"$py" bench/report_table.py "$out"
