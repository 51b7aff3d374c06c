"""Sum Nsight Compute's kernel durations per kernel name: where a profiled run spent its GPU time.

Usage: python3 tools/device/ncu_table.py NCU_CSV [--top 30]

NCU_CSV is what `ncu --csv --metrics gpu__time_duration.sum --log-file NCU_CSV PROGRAM` writes: one row per
kernel launch (its "Kernel Name", "Metric Name", "Metric Unit" and "Metric Value" columns are read; lines
before the CSV header, such as ncu's ==PROF== notes, are skipped). Prints one row per kernel name, largest
total first: launches, total ms, share of all kernel time, mean us per launch. Standard library only.
"""
import argparse
import csv
import io
import sys
from collections import defaultdict

SCALE_TO_MS = {"nsecond": 1e-6, "ns": 1e-6, "usecond": 1e-3, "us": 1e-3, "msecond": 1.0, "ms": 1.0,
               "second": 1e3, "s": 1e3}


def short_name(name: str, width: int = 64) -> str:
    """The kernel's name without its return type, namespaces we own and argument list (templates kept), cut
    to `width` characters."""
    name = name.replace("(anonymous namespace)::", "").replace("sanf::kernels::", "")
    if name.startswith("void "):
        name = name[len("void "):]
    depth, cut = 0, len(name)
    for i, ch in enumerate(name):  # the first '(' outside template brackets starts the argument list
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "(" and depth == 0:
            cut = i
            break
    name = name[:cut]
    return name if len(name) <= width else name[: width - 3] + "..."


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv_file")
    ap.add_argument("--top", type=int, default=30)
    a = ap.parse_args()
    with open(a.csv_file, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith('"ID"')), None)
    if start is None:
        print(f"ncu_table: no CSV header (a line starting with \"ID\") in {a.csv_file}", file=sys.stderr)
        return 1
    total_ms, count = defaultdict(float), defaultdict(int)
    for row in csv.DictReader(io.StringIO("\n".join(lines[start:]))):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        unit = row.get("Metric Unit", "")
        if unit not in SCALE_TO_MS:
            print(f"ncu_table: unknown unit {unit!r}", file=sys.stderr)
            return 1
        value = float(row["Metric Value"].replace(",", "")) * SCALE_TO_MS[unit]
        name = short_name(row.get("Kernel Name", "?"))
        total_ms[name] += value
        count[name] += 1
    if not total_ms:
        print("ncu_table: no gpu__time_duration.sum rows", file=sys.stderr)
        return 1
    grand = sum(total_ms.values())
    print(f"{'kernel':<64} {'launches':>8} {'total ms':>9} {'share':>6} {'us each':>8}")
    for name, ms in sorted(total_ms.items(), key=lambda kv: -kv[1])[: a.top]:
        print(f"{name:<64} {count[name]:>8} {ms:>9.3f} {100 * ms / grand:>5.1f}% {1e3 * ms / count[name]:>8.1f}")
    print(f"{'all kernels':<64} {sum(count.values()):>8} {grand:>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
