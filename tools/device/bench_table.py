"""The benchmark table at the end of tools/device/cuda_check.sh, from its bench.jsonl.

    python3 tools/device/bench_table.py out-device/bench.jsonl

ViT forward: one row per (arch, batch, precision) with sanf's images/s (the default paths, the fused
attention, cuBLASLt's epilogues, both), PyTorch's, and sanf / PyTorch for sanf's fastest variant. Ops and
the flow step: one row per (op, shape) with both sides' milliseconds, PyTorch ms / sanf ms (above 1:
sanf is faster), sanf's kernel calls per op and microseconds per call; a sanf figure on the CPU gets its
own row, marked "cpu". Lines that are not JSON are
skipped. Standard library only.
"""
import json
import sys

rows = []
for text in open(sys.argv[1], errors="replace"):
    try:
        d = json.loads(text)
    except ValueError:
        continue
    if isinstance(d, dict):
        rows.append(d)


def fmt(x, spec):
    """x formatted by spec ("9.1f"), or "-" right-aligned to the same width."""
    return format("-", ">" + spec.split(".")[0]) if x is None else format(x, spec)


# sanf's columns: the default paths, the fused attention, cuBLASLt's epilogues, and both.
SANF_COLS = {(False, False): "sanf", (True, False): "+fused", (False, True): "+lt", (True, True): "+fused+lt"}
vit = {}
for d in rows:
    if d.get("what") != "vit_forward":
        continue
    key = (d.get("arch"), d.get("batch"), d.get("precision"))
    if d.get("impl") == "torch":
        col = "torch"
    else:
        col = SANF_COLS[(bool(d.get("fused_attention")), bool(d.get("cublaslt")))]
    vit.setdefault(key, {})[col] = d.get("img_per_s")
if vit:
    print(f"{'ViT forward (img/s)':<28} " + " ".join(f"{c:>9}" for c in SANF_COLS.values())
          + f" {'torch':>9} {'best/torch':>10}")
    for (arch, batch, prec), v in vit.items():
        best = max((v[c] for c in SANF_COLS.values() if v.get(c)), default=None)
        ratio = best / v["torch"] if best and v.get("torch") else None
        print(f"{f'{arch} b{batch} {prec}':<28} " + " ".join(fmt(v.get(c), "9.1f") for c in SANF_COLS.values())
              + f" {fmt(v.get('torch'), '9.1f')} {fmt(ratio, '10.2f')}")
    # The opt-in paths against the default ones, in the same run: what decides whether they become defaults.
    gains = []
    for (arch, batch, prec), v in vit.items():
        base = v.get("sanf")
        for c in list(SANF_COLS.values())[1:]:
            if base and v.get(c):
                gains.append(f"{arch} b{batch} {prec} {c}: {v[c] / base:.2f}x")
    if gains:
        print("opt-in paths over the default paths: " + "; ".join(gains))

ops = {}
for d in rows:
    if "op" in d and "ms" in d:
        # A CPU figure (the GPU's own host, for comparison) is its own row, marked "cpu".
        cpu = " cpu" if d.get("device") == "cpu" else ""
        row = ops.setdefault((d["op"] + cpu, d.get("shape", "")), {})
        row[d.get("impl")] = d["ms"]
        if d.get("impl") == "sanf" and d.get("kernel_calls"):
            row["calls"] = d["kernel_calls"]
if ops:
    # calls: sanf's kernel calls per op (each at least one launch on a GPU); us/call: its time divided by
    # them, a few microseconds when launches, not arithmetic, set the time.
    print(f"{'op (ms)':<44} {'sanf':>9} {'torch':>9} {'torch/sanf':>10} {'calls':>6} {'us/call':>7}")
    for (op, shape), v in ops.items():
        s, t, n = v.get("sanf"), v.get("torch"), v.get("calls")
        name = f"{op} {shape}"
        print(f"{name[:44]:<44} {fmt(s, '9.3f')} {fmt(t, '9.3f')} {fmt(t / s if s and t else None, '10.2f')}"
              f" {fmt(n, '6d')} {fmt(1000 * s / n if s and n else None, '7.2f')}")
if not vit and not ops:
    print("no benchmark figures")
