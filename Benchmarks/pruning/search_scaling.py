#!/usr/bin/env python3
"""How HARP's α search cost grows with N = --drop-last on the default model.

Runs `harp-prune --drop-last N` for each N (default calibration: 128 windows × 128 tokens, α search
on the first 20 windows, 2 refinement sweeps) and prints, from each run's JSON report: candidates
scored, decoder-layer passes replayed, α-search seconds and seconds per searched layer. Each
candidate costs the LM head once plus the layers from the searched one to the top, so the fit
`seconds ≈ a · candidates + b · layer passes` separates the linear (LM head) and the quadratic
(replayed layers) parts of the cost.

usage: Benchmarks/pruning/search_scaling.py [--bin .build/release] [--n 2 4 8 16]
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def prune(harp_prune, n, out_dir):
    out = Path(out_dir) / f"harp-n{n}.gguf"
    cmd = [str(harp_prune), "--drop-last", str(n), "-o", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{result.stderr}")
    report = json.loads(out.with_suffix(".json").read_text())
    out.unlink()
    return report


def least_squares(rows):
    """a, b minimising Σ (a·x + b·y − t)² over rows of (x, y, t)."""
    sxx = sum(x * x for x, _, _ in rows)
    sxy = sum(x * y for x, y, _ in rows)
    syy = sum(y * y for _, y, _ in rows)
    sxt = sum(x * t for x, _, t in rows)
    syt = sum(y * t for _, y, t in rows)
    det = sxx * syy - sxy * sxy
    return (sxt * syy - syt * sxy) / det, (syt * sxx - sxt * sxy) / det


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(ROOT / ".build/release"), help="directory holding harp-prune")
    ap.add_argument("--n", type=int, nargs="+", default=[2, 4, 8, 16], help="values of --drop-last")
    args = ap.parse_args()
    harp_prune = Path(args.bin) / "harp-prune"

    rows = []
    with tempfile.TemporaryDirectory() as out_dir:
        for n in args.n:
            r = prune(harp_prune, n, out_dir)
            seconds = r["timings"]["α search"]
            rows.append((n, r["searchCandidates"], r["searchLayerPasses"], seconds, r["timings"]["total"]))
            print(f"N = {n}: {seconds:.1f} s", file=sys.stderr)

    print("| N | candidates | layer passes | α search (s) | per searched layer (s) | whole run (s) |")
    print("|---|---|---|---|---|---|")
    for n, candidates, passes, seconds, total in rows:
        print(f"| {n} | {candidates} | {passes} | {seconds:.1f} | {seconds / n:.1f} | {total:.1f} |")
    if len(rows) >= 2:
        a, b = least_squares([(c, p, s) for _, c, p, s, _ in rows])
        print(f"\nfit: α search ≈ {a:.3f} s × candidates + {b:.4f} s × layer passes "
              f"(one LM head ≈ {a / b:.1f} layer passes)" if b > 0 else f"\nfit: a = {a:.3f}, b = {b:.4f}")


if __name__ == "__main__":
    main()
