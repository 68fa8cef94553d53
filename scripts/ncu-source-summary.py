#!/usr/bin/env python3
"""Summarises Nsight Compute's per-instruction source page of one kernel.

    ncu ... -k regex:scan_forward -c 1 -o R bench_cuda scan 0
    ncu --import R.ncu-rep --page source --csv --print-source sass > R.csv
    scripts/ncu-source-summary.py R.csv [TOP]

Groups the SASS instructions by how many times a warp executed them (in the scan: once per
chunk, or once per state group and chunk in the state loop, and so on), and prints for each
group its static and executed instructions, its share of the stall samples and its main stall
reasons; then the TOP (default 20) instructions by stall samples. A group whose share of the
samples is well above its share of the instructions is where the warps wait.
"""
import collections
import csv
import lzma
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with (lzma.open(path, "rt") if path.endswith(".xz") else open(path, newline="")) as f:
        rows = list(csv.reader(f))
    # the first row names the kernel, the second the columns
    hdr, data = rows[1], [r for r in rows[2:] if len(r) == len(rows[1])]
    col = {h: i for i, h in enumerate(hdr)}
    for need in ("Source", "Instructions Executed", "Warp Stall Sampling (All Samples)"):
        if need not in col:
            sys.exit(f"{path}: no column '{need}' (expected ncu's --page source --csv output)")
    src, ex, smp = col["Source"], col["Instructions Executed"], col["Warp Stall Sampling (All Samples)"]
    reasons = [i for i, h in enumerate(hdr) if h.startswith("stall_") and "Not Issued" not in h]
    num = lambda r, i: int(float(r[i] or 0))

    total_ex = sum(num(r, ex) for r in data) or 1
    total_smp = sum(num(r, smp) for r in data) or 1
    groups = collections.defaultdict(lambda: [0, 0, 0, collections.Counter()])
    for r in data:
        g = groups[num(r, ex)]
        g[0] += 1
        g[1] += num(r, ex)
        g[2] += num(r, smp)
        for i in reasons:
            g[3][hdr[i][6:]] += num(r, i)
    print(f"{rows[0][1] if len(rows[0]) > 1 else path}")
    print(f"executed warp instructions {total_ex:,}, stall samples {total_smp:,}")
    print("runs per warp\tstatic\texecuted\t% instr\t% samples\tmain stall reasons")
    for runs, (n, e, s, why) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
        if e == 0 and s == 0:
            continue
        main_reasons = ", ".join(f"{k} {v * 100 // max(s, 1)}%" for k, v in why.most_common(4))
        print(f"{runs}\t{n}\t{e:,}\t{100 * e / total_ex:.1f}\t{100 * s / total_smp:.1f}\t{main_reasons}")
    print(f"top {top} instructions by stall samples (index, runs, samples, reason, SASS):")
    for i in sorted(range(len(data)), key=lambda i: -num(data[i], smp))[:top]:
        r = data[i]
        why = max(reasons, key=lambda c: num(r, c)) if reasons else None
        print(f"{i}\t{num(r, ex)}\t{num(r, smp)}\t{hdr[why][6:] if why else '-'}\t{r[src].strip()}")


if __name__ == "__main__":
    main()
