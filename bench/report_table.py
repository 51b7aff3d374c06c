"""The markdown tables of docs/PERFORMANCE.md ("CPU figures") from the JSON lines of bench/cpu_report.sh.

    python3 bench/report_table.py bench-results/cpu-....jsonl

Per figure: the median over rounds. Per ratio: the median over rounds of that round's ratio (sanf and its
peer ran back to back in each round). Standard library only.
"""
import json
import statistics
import sys
from collections import defaultdict

lines = [json.loads(s) for s in open(sys.argv[1]) if s.strip()]
med = statistics.median


def rounds_of(pred, key):
    """{round: value} of the lines matching pred."""
    return {d["round"]: d[key] for d in lines if pred(d)}


def paired(a, b):
    """Median over the rounds both have of a[r] / b[r]."""
    common = sorted(set(a) & set(b))
    return med([a[r] / b[r] for r in common]) if common else None


def fmt(x, spec=".1f"):
    return "-" if x is None else format(x, spec)


machine = next((d for d in lines if d.get("what") == "machine"), {})
print(f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores; commit {machine.get('commit', '?')}, "
      f"{machine.get('date', '?')}; OPENBLAS_CORETYPE={machine.get('OPENBLAS_CORETYPE') or '(unset)'}; "
      f"{max((d.get('round', 0) for d in lines), default=0)} rounds.\n")

peak = {d["threads"]: d["gflops"] for d in lines if d.get("what") == "fma_peak" and d.get("impl") == "sanf"}
isa = next((d["isa"] for d in lines if d.get("what") == "fma_peak"), "?")
print("| FMA peak (" + isa + ") | " + " | ".join(f"{t} thread{'s' if t > 1 else ''}: {g} GFLOP/s"
                                                 for t, g in sorted(peak.items())) + " |")
print("|---|---|" + ("---|" if len(peak) > 1 else ""))
print()

gemm = [d for d in lines if d.get("what") == "gemm"]
if gemm:
    top = max(peak) if peak else None
    print("| GEMM f32 (M x K x N, layout) | sanf GFLOP/s | % of peak | numpy/OpenBLAS as configured | "
          "sanf / it | numpy/OpenBLAS, CORETYPE unset | sanf / it |")
    print("|---|---|---|---|---|---|---|")
    keys = sorted({(d["role"], d["M"], d["K"], d["N"], d["layout"]) for d in gemm}, key=lambda k: (k[4], k[2], k[3]))
    for role, M, K, N, layout in keys:
        same = lambda d, impl, label=None: (d.get("what") == "gemm" and d["impl"] == impl and d["role"] == role  # noqa
                                            and d["layout"] == layout and (label is None or d.get("label") == label))
        s = rounds_of(lambda d: same(d, "sanf"), "gflops")
        if not s:
            continue
        cfg = rounds_of(lambda d: same(d, "numpy", "as-configured"), "gflops")
        uns = rounds_of(lambda d: same(d, "numpy", "coretype unset"), "gflops")
        threads = next(d["threads"] for d in gemm if same(d, "sanf"))
        pct = 100 * med(s.values()) / peak[threads] if threads in peak else None
        print(f"| {role}: {M} x {K} x {N}, `{layout}` | {fmt(med(s.values()))} | {fmt(pct, '.0f')}% | "
              f"{fmt(med(cfg.values()) if cfg else None)} | {fmt(paired(s, cfg), '.2f')}x | "
              f"{fmt(med(uns.values()) if uns else None)} | {fmt(paired(s, uns), '.2f')}x |")
    print()

def best_peer(rounds_by_threads, faster):
    """Per round, the better of the peer's thread settings: {round: value}."""
    out = {}
    for vals in rounds_by_threads.values():
        for r, x in vals.items():
            out[r] = x if r not in out else faster(out[r], x)
    return out


def torch_cells(by_threads, spec):
    return " / ".join(f"{fmt(med(v.values()), spec)} ({t} thr.)" for t, v in sorted(by_threads.items(), reverse=True))


vit_keys = sorted({(d["arch"], d["batch"], d["image_size"]) for d in lines if d.get("what") == "vit_forward"})
for arch, batch, size in vit_keys:
    same = lambda d: (d.get("what") == "vit_forward" and d["arch"] == arch and d["batch"] == batch  # noqa: E731
                      and d["image_size"] == size)
    s = rounds_of(lambda d: same(d) and d["impl"] == "sanf", "img_per_s")
    t = defaultdict(dict)
    for d in lines:
        if same(d) and d["impl"] == "torch":
            t[d["threads"]][d["round"]] = d["img_per_s"]
    print("| ViT forward (f32, random weights) | sanf img/s | PyTorch img/s (torch threads) | sanf / best PyTorch |")
    print("|---|---|---|---|")
    print(f"| {arch} at {size}, batch {batch} | {fmt(med(s.values()), '.2f')} | {torch_cells(t, '.2f')} | "
          f"{fmt(paired(s, best_peer(t, max)), '.2f')}x |")
    print()

flow_ops = sorted({d["op"] for d in lines if d.get("op", "").startswith("flow_")})
if flow_ops:
    print("| flow (B 32, D 768, N 196, H 768, K 4) | sanf ms | PyTorch ms (torch threads) | best PyTorch / sanf |")
    print("|---|---|---|---|")
    for op in [o for o in flow_ops if not o.endswith("_direct_attention")]:
        s = rounds_of(lambda d: d.get("op") == op and d["impl"] == "sanf", "ms")
        if not s:
            continue
        for peer_op in (op, op + "_direct_attention"):
            t = defaultdict(dict)
            for d in lines:
                if d.get("op") == peer_op and d["impl"] == "torch":
                    t[d["threads"]][d["round"]] = d["ms"]
            label = op if peer_op == op else f"{op} (PyTorch attending over all tokens, as the formula is written)"
            print(f"| {label} | {fmt(med(s.values()))} | {torch_cells(t, '.1f')} | "
                  f"{fmt(paired(best_peer(t, min), s), '.2f')}x |")
    print()

ext = [d for d in lines if d.get("what") == "extract"]
if ext:
    print("| `sanf bench extract` (" + ext[0]["arch"] + f" at {ext[0]['image_size']}, batch {ext[0]['batch']}) | "
          "images | img/s | output MiB | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for d in sorted(ext, key=lambda d: d["images"]):
        print(f"| | {d['images']} | {d['img_per_s']} | {d['output_mib']} | {d['peak_rss_mib']} |")

pred = [d for d in lines if d.get("what") == "predict"]
if pred:
    print()
    print("| `sanf bench predict` (" + pred[0]["arch"] + f" at {pred[0]['image_size']}, batch {pred[0]['batch']}) | "
          "images | img/s |")
    print("|---|---|---|")
    for d in sorted(pred, key=lambda d: d["images"]):
        print(f"| PNG files to predictions.csv | {d['images']} | {d['img_per_s']} |")
