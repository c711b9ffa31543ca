#!/usr/bin/env python3
"""Side-by-side speed of harp-run and llama.cpp's llama-bench on the same files, interleaved.

Each test (pp512, tg128, decode at depth 2048, ...) runs alternately in both programs for several
passes in one session, so both see the same machine state; the median of the passes is reported with
the ratio HARP / llama.cpp. Never part of CI (it takes minutes and needs a llama.cpp build:
Benchmarks/build-llamacpp.sh).

usage: Benchmarks/compare_llamacpp.py [--models A.gguf B.gguf] [--threads 2] [--passes 3] [--out FILE.md]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (label, harp-run bench args, llama-bench args)
TESTS = [
    ("pp512", ["-p", "512", "-n", "0"], ["-p", "512", "-n", "0"]),
    ("tg128", ["-p", "0", "-n", "128"], ["-p", "0", "-n", "128"]),
    ("tg128 @ d2048", ["-p", "0", "-n", "128", "-d", "2048"], ["-p", "0", "-n", "128", "-d", "2048"]),
]


def find_llama_bench():
    candidates = [os.environ.get("LLAMA_BENCH"), shutil.which("llama-bench"),
                  str(ROOT / "Benchmarks/out/llama.cpp/build/bin/llama-bench")]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    return None


def llama_version(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    lines = (out.stdout + out.stderr).splitlines()
    return next((l.strip() for l in lines if "version" in l), "unknown")


def run_harp(harp, model, args, threads, reps):
    cmd = [harp, "bench", "-m", model, "-t", str(threads), "-r", str(reps), "--json"] + args
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    report = json.loads(out.stdout)
    return report["results"][0]["tokensPerSecond"], report["peakRSSBytes"]


def run_llama(bench, model, args, threads, reps):
    cmd = [bench, "-m", model, "-t", str(threads), "-r", str(reps), "-o", "json"] + args
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    results = json.loads(out.stdout)
    return results[0]["avg_ts"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=[str(ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf")])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--passes", type=int, default=3, help="interleaved passes per test (median reported)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions inside each program per pass")
    ap.add_argument("--tests", nargs="+", default=[t[0] for t in TESTS])
    ap.add_argument("--out", help="also write the markdown table to this file")
    args = ap.parse_args()

    harp = str(ROOT / ".build/release/harp-run")
    if not os.access(harp, os.X_OK):
        sys.exit(f"compare: {harp} not found; run `swift build -c release` first")
    bench = find_llama_bench()
    if bench is None:
        sys.exit("compare: llama-bench not found (set LLAMA_BENCH, put it on PATH, or run Benchmarks/build-llamacpp.sh)")

    rows = []
    for model in args.models:
        for label, harp_args, llama_args in TESTS:
            if label not in args.tests:
                continue
            h, l = [], []
            for p in range(args.passes):
                # Alternate which program goes first so neither always meets a warmer machine.
                order = [("harp", harp_args), ("llama", llama_args)]
                if p % 2:
                    order.reverse()
                for who, extra in order:
                    if who == "harp":
                        h.append(run_harp(harp, model, extra, args.threads, args.reps)[0])
                    else:
                        l.append(run_llama(bench, model, extra, args.threads, args.reps))
                print(f"{Path(model).name} {label} pass {p + 1}: harp {h[-1]:.1f} t/s, llama.cpp {l[-1]:.1f} t/s",
                      file=sys.stderr)
            hm, lm = statistics.median(h), statistics.median(l)
            rows.append((Path(model).name, label, hm, lm, hm / lm))

    lines = [f"llama.cpp: {llama_version(bench)}; threads: {args.threads}; "
             f"median of {args.passes} interleaved passes × {args.reps} repetitions", "",
             "| model | test | HARP t/s | llama.cpp t/s | ratio |", "|---|---|---:|---:|---:|"]
    lines += [f"| {m} | {t} | {h:.1f} | {l:.1f} | {r:.2f}× |" for m, t, h, l, r in rows]
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
