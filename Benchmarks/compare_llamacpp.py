#!/usr/bin/env python3
"""Side-by-side speed of harp-run, llama.cpp and ik_llama.cpp on the same files, interleaved.

For every row (model × test) the three programs run in turn, A B C, then B C A, C A B, ... for
--passes passes, so all see the same machine state; the median of the passes is reported with the
ratios HARP / llama.cpp and HARP / ik_llama.cpp. A memory-bandwidth probe
(Benchmarks/bandwidth/bandwidth.c) runs before the rows, so decode figures are also stated as a
share of the machine's read bandwidth (weight bytes read per token × tokens/s). Never part of CI.

Peers: llama.cpp from Benchmarks/build-llamacpp.sh, ik_llama.cpp from Benchmarks/build-ik-llamacpp.sh
(both into Benchmarks/out/, or point LLAMA_CPP_BIN / IK_LLAMA_CPP_BIN at their build/bin). A program
that is missing is left out of the table (its column says "—").

Models (keys; files in models/, the Q8_0 made from the Q4_1 with llama-quantize into Benchmarks/out/):
  smollm2-q4_1  smollm2-q8_0  qwen0.5b  qwen1.5b
Tests:
  pp512  tg128  pp-long (pp8192; pp4096 on the 1.5B)  tg128@d4096  tg128x8 (8 sequences, 128-token
  prompts: harp-run bench --parallel 8 -d 128, llama-batched-bench -npp 128 -ntg 128 -npl 8)

usage: Benchmarks/compare_llamacpp.py [--models KEY ...] [--tests TEST ...] [--rows KEY:TEST ...]
       [--programs harp llama ik] [--passes 2] [--reps 1] [--threads 2] [--out FILE.md] [--dry-run]
Running time on the 2-core Zen 3 machine, quiet, defaults (2 passes × 1 repetition, all 20 rows):
about 35 minutes, most of it in the 1.5B rows; `--models smollm2-q4_1 smollm2-q8_0` takes ~8.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Benchmarks/out"

MODELS = {
    "smollm2-q4_1": ("models/SmolLM2-135M-Instruct.Q4_1.gguf", 8192),
    "smollm2-q8_0": ("Benchmarks/out/SmolLM2-135M-Instruct.Q8_0-from-Q4_1.gguf", 8192),
    "qwen0.5b": ("models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", 8192),
    "qwen1.5b": ("models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", 4096),
}
TESTS = ["pp512", "tg128", "pp-long", "tg128@d4096", "tg128x8"]
PROGRAMS = ["harp", "llama", "ik"]
LABEL = {"harp": "HARP", "llama": "llama.cpp", "ik": "ik_llama.cpp"}


def find_bin(env, subdir, name):
    for d in (os.environ.get(env), str(OUT / subdir / "build/bin")):
        if d and os.access(os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    return None


def version(binary, script):
    """The program's --version line and the source package its build script takes (the vendored
    trees carry no git metadata, so the commit often reads "unknown")."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    line = next((l.strip() for l in (out.stdout + out.stderr).splitlines() if "version" in l), "unknown")
    m = re.search(r'(\w+)_VERSION:-([0-9.]+)', (ROOT / "Benchmarks" / script).read_text())
    package = {"LLAMA_CPP_PYTHON": "llama-cpp-python", "IK_LLAMA_CPP_PYTHON": "ik-llama-cpp-python"}.get(m.group(1)) if m else None
    return f"{line} (from {package} {m.group(2)})" if package else line


def run(cmd, timeout=3600):
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(cmd)}: exit {out.returncode}: {' / '.join(tail)}")
    return out.stdout


def long_len(model_key):
    return MODELS[model_key][1]


def harp_cmd(harp, model, key, test, a):
    base = [harp, "bench", "-m", model, "-t", str(a.threads), "-r", str(a.reps), "--json"]
    n = long_len(key)
    return base + {
        "pp512": ["-p", "512", "-n", "0"],
        "tg128": ["-p", "0", "-n", "128"],
        "pp-long": ["-p", str(n), "-n", "0"],
        "tg128@d4096": ["-p", "0", "-n", "128", "-d", "4096"],
        "tg128x8": ["-p", "0", "-n", "128", "-d", "128", "--parallel", "8"],
    }[test]


def bench_cmd(binary, model, key, test, a, ik):
    if test == "tg128x8":
        batched = binary.replace("llama-bench", "llama-batched-bench")
        return [batched, "-m", model, "-t", str(a.threads), "-c", "4096", "-npp", "128", "-ntg", "128", "-npl", "8",
                "-fa", a.fa] + (["-rtr", "1"] if ik and a.rtr else [])
    base = [binary, "-m", model, "-t", str(a.threads), "-r", str(a.reps), "-o", "json", "-fa", a.fa]
    if ik and a.rtr:
        base += ["-rtr", "1"]
    n = long_len(key)
    if test == "pp512":
        return base + ["-p", "512", "-n", "0"]
    if test == "tg128":
        return base + ["-p", "0", "-n", "128"]
    if test == "pp-long":
        return base + ["-p", str(n), "-n", "0"]
    # tg128 at depth 4096: mainline's -d, ik's -gp (times the generation only)
    return base + (["-p", "0", "-n", "0", "-gp", "4096,128"] if ik else ["-p", "0", "-n", "128", "-d", "4096"])


def parse_bench(stdout, test):
    if test == "tg128x8":  # markdown row | PP | TG | B | N_KV | T_PP | S_PP | T_TG | S_TG | T | S |
        for line in stdout.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 8 and cells[0] == "128" and cells[2] == "8":
                return float(cells[7])
        raise RuntimeError("no result row in llama-batched-bench output")
    results = json.loads(stdout)
    return results[-1]["avg_ts"]


def measure(who, binaries, model, key, test, a):
    if who == "harp":
        out = run(harp_cmd(binaries["harp"], model, key, test, a))
        report = json.loads(out)
        return report["results"][-1]["tokensPerSecond"], report["weightBytes"]
    cmd = bench_cmd(binaries[who], model, key, test, a, who == "ik")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
    # llama-batched-bench prints its table on stdout (mainline) or stderr (ik)
    return parse_bench(proc.stdout if test != "tg128x8" else proc.stdout + proc.stderr, test), None


def bandwidth():
    src = ROOT / "Benchmarks/bandwidth/bandwidth.c"
    exe = OUT / "bandwidth"
    OUT.mkdir(parents=True, exist_ok=True)
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        run([os.environ.get("CC", "cc"), "-O2", "-pthread", str(src), "-o", str(exe)])
    return json.loads(run([str(exe), "512", "2", "5", "--json"]))


def ensure_q8(binaries):
    path = ROOT / MODELS["smollm2-q8_0"][0]
    if path.exists():
        return
    quant = binaries.get("llama") and binaries["llama"].replace("llama-bench", "llama-quantize")
    if not quant or not os.access(quant, os.X_OK):
        raise RuntimeError(f"{path} is missing and llama-quantize was not found to make it")
    OUT.mkdir(parents=True, exist_ok=True)
    run([quant, "--allow-requantize", str(ROOT / MODELS["smollm2-q4_1"][0]), str(path), "Q8_0"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--tests", nargs="+", default=TESTS, choices=TESTS)
    ap.add_argument("--rows", nargs="+", help="explicit MODEL:TEST rows instead of --models × --tests")
    ap.add_argument("--programs", nargs="+", default=PROGRAMS, choices=PROGRAMS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--passes", type=int, default=2, help="interleaved passes per row (median reported)")
    ap.add_argument("--reps", type=int, default=1, help="repetitions inside each program per pass")
    ap.add_argument("--fa", default="1", help="flash attention for both peers (llama-bench -fa)")
    ap.add_argument("--no-rtr", dest="rtr", action="store_false", help="no -rtr 1 for ik_llama.cpp")
    ap.add_argument("--no-probe", dest="probe", action="store_false", help="skip the bandwidth probe")
    ap.add_argument("--dry-run", action="store_true", help="print the commands of the first pass and stop")
    ap.add_argument("--out", help="also write the markdown table to this file")
    a = ap.parse_args()

    rows = []
    if a.rows:
        for r in a.rows:
            key, _, test = r.partition(":")
            if key not in MODELS or test not in TESTS:
                sys.exit(f"compare: bad row '{r}' (models: {', '.join(MODELS)}; tests: {', '.join(TESTS)})")
            rows.append((key, test))
    else:
        rows = [(m, t) for m in a.models for t in a.tests]

    binaries = {"harp": str(ROOT / ".build/release/harp-run"),
                "llama": find_bin("LLAMA_CPP_BIN", "llama.cpp", "llama-bench"),
                "ik": find_bin("IK_LLAMA_CPP_BIN", "ik_llama.cpp", "llama-bench")}
    if not os.access(binaries["harp"], os.X_OK):
        sys.exit(f"compare: {binaries['harp']} not found; run `swift build -c release` first")
    programs = []
    for p in a.programs:
        if binaries[p]:
            programs.append(p)
        else:
            print(f"compare: {LABEL[p]} not found (build it with Benchmarks/build-{'ik-' if p == 'ik' else ''}llamacpp.sh); "
                  "its column stays empty", file=sys.stderr)
    if any(k == "smollm2-q8_0" for k, _ in rows) and not a.dry_run:
        ensure_q8(binaries)
    for key in {k for k, _ in rows}:
        if not (ROOT / MODELS[key][0]).exists() and not a.dry_run:
            sys.exit(f"compare: {MODELS[key][0]} not found (tools/fetch-models.sh)")

    if a.dry_run:
        for key, test in rows:
            model = str(ROOT / MODELS[key][0])
            for p in programs:
                cmd = harp_cmd(binaries[p], model, key, test, a) if p == "harp" else bench_cmd(binaries[p], model, key, test, a, p == "ik")
                print(" ".join(cmd))
        return

    started = time.time()
    probe = bandwidth() if a.probe else None
    if probe:
        print(f"bandwidth probe: {probe['best_gbs']:.1f} GB/s best ({probe['best']}), plain loads {probe['plain_gbs']:.1f}",
              file=sys.stderr)
    table = []
    for key, test in rows:
        model = str(ROOT / MODELS[key][0])
        got = {p: [] for p in programs}
        weight_bytes = None
        for pas in range(a.passes):
            order = programs[pas % len(programs):] + programs[:pas % len(programs)]
            for p in order:
                try:
                    ts, wb = measure(p, binaries, model, key, test, a)
                except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError, KeyError) as e:
                    print(f"compare: {LABEL[p]} {key} {test}: {e}", file=sys.stderr)
                    continue
                got[p].append(ts)
                weight_bytes = wb or weight_bytes
            print(f"{key} {test} pass {pas + 1}: " + ", ".join(f"{LABEL[p]} {got[p][-1]:.1f}" for p in programs if got[p]),
                  file=sys.stderr)
        med = {p: statistics.median(v) if v else None for p, v in got.items()}
        table.append((key, test, med, weight_bytes))

    def cell(x):
        return f"{x:.1f}" if x else "—"

    def ratio(x, y):
        return f"{x / y:.2f}×" if x and y else "—"

    head = [f"{LABEL[p]}: {version(binaries[p], 'build-llamacpp.sh' if p == 'llama' else 'build-ik-llamacpp.sh')}"
            for p in programs if p != "harp"]
    lines = ["; ".join(head) + f"; threads {a.threads}; llama-bench -fa {a.fa}" + ("; ik -rtr 1" if a.rtr else ""),
             f"median of {a.passes} interleaved passes × {a.reps} repetitions; {time.time() - started:.0f} s in all"]
    if probe:
        lines.append(f"read bandwidth (Benchmarks/bandwidth, 2 threads): {probe['best_gbs']:.1f} GB/s "
                     f"({probe['best']}; plain loads {probe['plain_gbs']:.1f})")
    lines += ["", "| model | test | HARP t/s | llama.cpp t/s | ik_llama.cpp t/s | HARP / llama.cpp | HARP / ik |"
              + (" decode GB/s (H / L / ik) |" if probe else ""),
              "|---|---|---:|---:|---:|---:|---:|" + ("---:|" if probe else "")]
    for key, test, med, wb in table:
        h, l, k = med.get("harp"), med.get("llama"), med.get("ik")
        row = f"| {key} | {test} | {cell(h)} | {cell(l)} | {cell(k)} | {ratio(h, l)} | {ratio(h, k)} |"
        if probe:
            if test in ("tg128", "tg128@d4096") and wb:
                row += " " + " / ".join(cell(x * wb / 1e9) if x else "—" for x in (h, l, k)) + " |"
            else:
                row += " |"
        lines.append(row)
    if probe:
        lines += ["", "decode GB/s = weight bytes of the file × tokens/s (KV reads not counted), "
                      f"to compare with the probe's {probe['best_gbs']:.1f} GB/s"]
    text = "\n".join(lines)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
