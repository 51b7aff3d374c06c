"""numpy peer of `sanf bench gemm`: the same f32 products through numpy's BLAS (OpenBLAS where Debian's
libopenblas0 is installed: `python3 -c "import numpy; numpy.show_config()"` says which), same JSON fields.

    python3 bench/bench_gemm_numpy.py [--rows 1576] [--all-layouts] [--quick] [--label as-configured]

The timing method is bench/bench_common.py's median_ms (which does not need torch). `--label` is copied into each line so
that runs under different environments can be told apart: bench/cpu_report.sh runs this twice, once as
the machine is configured and once with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset (OpenBLAS then picks
its kernel from CPUID itself).
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_common import median_ms  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--rows", type=int, default=8 * 197)
p.add_argument("--all-layouts", action="store_true")
p.add_argument("--quick", action="store_true")
p.add_argument("--label", default="")
a = p.parse_args()


def blas_name():
    """The BLAS library this process really loaded (Debian's numpy links libblas.so.3, which the
    alternatives system points at OpenBLAS, BLIS or the reference BLAS)."""
    with open("/proc/self/maps") as f:
        libs = {os.path.basename(os.path.realpath(line.split()[-1])) for line in f if "blas" in line.split()[-1]}
    return ",".join(sorted(libs)) or "unknown"


rng = np.random.default_rng(0)
M = a.rows
env = {k: os.environ.get(k, "") for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")}
for K, N, role in [(768, 768, "proj"), (768, 2304, "qkv"), (768, 3072, "fc1"), (3072, 768, "fc2")]:
    x = rng.standard_normal((M, K), dtype=np.float32)
    w = rng.standard_normal((N, K), dtype=np.float32)
    b = rng.standard_normal((K, N), dtype=np.float32)
    xt = rng.standard_normal((K, M), dtype=np.float32)
    c = np.empty((M, N), dtype=np.float32)
    layouts = [("a @ w.T", lambda: np.matmul(x, w.T, out=c))]
    if a.all_layouts:
        layouts += [("a @ b", lambda: np.matmul(x, b, out=c)), ("at.T @ b", lambda: np.matmul(xt.T, b, out=c))]
    for name, fn in layouts:
        ms = median_ms(fn, warmup=2, max_reps=5 if a.quick else 30, budget_s=0.3 if a.quick else 2.0)
        print(json.dumps({"impl": "numpy", "what": "gemm", "device": "cpu", "role": role, "M": M, "K": K, "N": N,
                          "layout": name, "threads": int(env["OPENBLAS_NUM_THREADS"] or os.cpu_count()),
                          "ms": round(ms, 3), "gflops": round(2.0 * M * N * K / ms / 1e6, 1), "label": a.label,
                          "blas": blas_name(), "env": env}), flush=True)
