"""The timing method every peer shares (twin of bench/bench_common.h): the median of repeated calls after
warm-up, stopping at max_reps or once budget_s has passed (at least 3 samples); CUDA synchronised.
torch is imported only by the peers that use it (torch_setup); the numpy peer times with median_ms alone."""
import json
import os
import statistics
import time


def torch_setup():
    """Imports torch for a PyTorch peer and sets its threads; returns the module.

    Debian's torch starts with one intra-op thread; sanf uses every core (OpenMP's default), so by default
    the peers do too (OMP_NUM_THREADS, when set, decides for both). TORCH_THREADS overrides it for the peer
    alone: Debian's torch calls OpenBLAS, which runs its own threads, so one torch thread can be the faster
    setting (bench/cpu_report.sh measures both)."""
    import torch

    torch.set_num_threads(int(os.environ.get("TORCH_THREADS") or os.environ.get("OMP_NUM_THREADS") or os.cpu_count()))
    return torch


def median_ms(fn, device="cpu", warmup=3, max_reps=50, budget_s=1.0):
    def sync():
        if device == "cuda":
            import torch

            torch.cuda.synchronize()

    for _ in range(warmup):
        fn()
    sync()
    times, start = [], time.perf_counter()
    while len(times) < max_reps:
        t0 = time.perf_counter()
        fn()
        sync()
        t1 = time.perf_counter()
        times.append((t1 - t0) * 1e3)
        if t1 - start > budget_s and len(times) >= 3:
            break
    return statistics.median(times)


def report(op, shape, fn, device, **timing):
    """Times fn and prints one JSON line: impl, device, op, shape, threads, ms."""
    import torch

    ms = median_ms(fn, device, **timing)
    print(json.dumps({"impl": "torch", "device": device, "op": op, "shape": shape, "threads": torch.get_num_threads(),
                      "ms": round(ms, 4)}), flush=True)
