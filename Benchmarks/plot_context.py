#!/usr/bin/env python3
"""Latency against context length: prefill time of a prompt of C tokens and per-token decode time
at depth C, for a dense model and its HARP-pruned versions on harp-run, with llama.cpp's and
ik_llama.cpp's dense curves beside them. Draws Benchmarks/context/latency.png from the table it
writes first (Benchmarks/context/latency.md and .json); --plot-only redraws from the JSON.

Pruned models are made on first use with `harp-prune --drop-last N` into Benchmarks/out/
(about 3 minutes each). At every point the programs run in turn (interleaved), --passes times,
and the median is kept. matplotlib is installed from PyPI (pip --user) when missing.

usage: Benchmarks/plot_context.py [--family smollm2|qwen1.5b] [--contexts 512 1024 ...] [--passes 1]
       [--programs harp llama ik] [--gen 16] [--plot-only]
Running time, 2-core Zen 3, quiet machine: SmolLM2 with the default contexts 512 … 8192 and one
pass, about 15 minutes (the 8192-token prefills dominate); the 1.5B family up to 4096 about 40.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Benchmarks/out"
DEST = ROOT / "Benchmarks/context"
MACHINE = "AMD EPYC (Zen 3, AVX2 only), 2 cores, 2 threads"

FAMILIES = {
    # dense file, pruned layer counts, layers, the model's context length
    "smollm2": ("models/SmolLM2-135M-Instruct.Q4_1.gguf", [4, 8], 30, 8192),
    "qwen1.5b": ("models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", [4, 7], 28, 32768),
}


def run(cmd, timeout=7200):
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: exit {p.returncode}: {(p.stderr or p.stdout).strip()[-300:]}")
    return p.stdout


def peer(env, subdir):
    for d in (os.environ.get(env), str(OUT / subdir / "build/bin")):
        if d and os.access(os.path.join(d, "llama-bench"), os.X_OK):
            return os.path.join(d, "llama-bench")
    return None


def pruned(dense, n, harp_prune):
    out = OUT / f"{Path(dense).stem}.harp{n}.gguf"
    if not out.exists():
        print(f"pruning: harp-prune --drop-last {n} -o {out} (~3 min)", file=sys.stderr)
        OUT.mkdir(parents=True, exist_ok=True)
        run([harp_prune, "-m", dense, "-o", str(out), "--drop-last", str(n)])
    return str(out)


def harp_point(harp, model, ctx, gen, kind):
    args = ["-p", str(ctx), "-n", "0"] if kind == "prefill" else ["-p", "0", "-n", str(gen), "-d", str(ctx)]
    r = json.loads(run([harp, "bench", "-m", model, "-t", "2", "-r", "1", "--json"] + args))
    return r["results"][-1]["tokensPerSecond"]


def peer_point(binary, model, ctx, gen, kind, ik):
    cmd = [binary, "-m", model, "-t", "2", "-r", "1", "-o", "json", "-fa", "1"] + (["-rtr", "1"] if ik else [])
    if kind == "prefill":
        cmd += ["-p", str(ctx), "-n", "0"]
    elif ik:
        cmd += ["-p", "0", "-n", "0", "-gp", f"{ctx},{gen}"]
    else:
        cmd += ["-p", "0", "-n", str(gen), "-d", str(ctx)]
    return json.loads(run(cmd))[-1]["avg_ts"]


def latency_ms(kind, ctx, ts):
    # prefill: the whole prompt of ctx tokens; decode: one token at depth ctx
    return (ctx if kind == "prefill" else 1) / ts * 1e3


def measure(a):
    dense, prune_ns, layers, max_ctx = FAMILIES[a.family]
    harp = str(ROOT / ".build/release/harp-run")
    harp_prune = str(ROOT / ".build/release/harp-prune")
    for exe in (harp, harp_prune):
        if not os.access(exe, os.X_OK):
            sys.exit(f"plot_context: {exe} not found; run `swift build -c release` first")
    dense_path = str(ROOT / dense)
    if not Path(dense_path).exists():
        sys.exit(f"plot_context: {dense} not found (tools/fetch-models.sh)")
    curves = [(f"HARP dense", "harp", dense_path)]
    for n in prune_ns:
        curves.append((f"HARP pruned {n}/{layers}", "harp", pruned(dense_path, n, harp_prune)))
    for name, env, sub, ik in (("llama", "LLAMA_CPP_BIN", "llama.cpp", False), ("ik", "IK_LLAMA_CPP_BIN", "ik_llama.cpp", True)):
        if name in a.programs:
            b = peer(env, sub)
            if b:
                curves.append(("llama.cpp dense" if not ik else "ik_llama.cpp dense", name, b))
            else:
                print(f"plot_context: {sub} llama-bench not found; its curve is left out", file=sys.stderr)
    contexts = [c for c in a.contexts if c + a.gen <= max_ctx]
    rows = []
    started = time.time()
    for kind in ("prefill", "decode"):
        for ctx in contexts:
            got = {c[0]: [] for c in curves}
            for p in range(a.passes):
                order = curves[p % len(curves):] + curves[:p % len(curves)]
                for label, who, path in order:
                    try:
                        if who == "harp":
                            ts = harp_point(harp, path, ctx, a.gen, kind)
                        else:
                            ts = peer_point(path, dense_path, ctx, a.gen, kind, who == "ik")
                    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as e:
                        print(f"plot_context: {label} {kind} {ctx}: {e}", file=sys.stderr)
                        continue
                    got[label].append(latency_ms(kind, ctx, ts))
            for label, v in got.items():
                if v:
                    rows.append({"kind": kind, "context": ctx, "curve": label, "ms": statistics.median(v)})
                    print(f"{kind} {ctx} {label}: {rows[-1]['ms']:.2f} ms", file=sys.stderr)
    return {"family": a.family, "model": dense, "machine": MACHINE, "passes": a.passes, "gen": a.gen,
            "seconds": round(time.time() - started), "rows": rows}


def write_table(data):
    rows = data["rows"]
    curves = list(dict.fromkeys(r["curve"] for r in rows))
    lines = [f"# Latency against context: {data['model']}", "",
             f"{data['machine']}; median of {data['passes']} interleaved pass(es); prefill = whole prompt of C tokens, "
             f"decode = ms per token over {data['gen']} tokens at depth C; {data['seconds']} s to measure "
             "(`Benchmarks/plot_context.py`).", ""]
    for kind in ("prefill", "decode"):
        pts = sorted({r["context"] for r in rows if r["kind"] == kind})
        if not pts:
            continue
        ms = {(r["curve"], r["context"]): r["ms"] for r in rows if r["kind"] == kind}
        pruned = [c for c in curves if "pruned" in c]
        lines += [f"## {kind} (ms)", "", "| C | " + " | ".join(curves) + " | " + " | ".join(f"dense / {c}" for c in pruned) + " |",
                  "|---:|" + "---:|" * (len(curves) + len(pruned))]
        for c in pts:
            vals = [f"{ms[(k, c)]:.1f}" if (k, c) in ms else "—" for k in curves]
            gains = [f"{ms[('HARP dense', c)] / ms[(k, c)]:.2f}×" if ("HARP dense", c) in ms and (k, c) in ms else "—"
                     for k in pruned]
            lines.append(f"| {c} | " + " | ".join(vals) + " | " + " | ".join(gains) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(data, png):
    try:
        import matplotlib
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--user", "-q", "matplotlib"], check=True)
        import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = data["rows"]
    curves = list(dict.fromkeys(r["curve"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, kind, ylabel in ((axes[0], "prefill", "prefill of the whole prompt (ms)"),
                             (axes[1], "decode", "decode, per token (ms)")):
        for curve in curves:
            pts = sorted((r["context"], r["ms"]) for r in rows if r["kind"] == kind and r["curve"] == curve)
            if not pts:
                continue
            style = "-" if curve.startswith("HARP") else "--"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", label=curve)
        ax.set_xscale("log", base=2)
        if kind == "prefill":
            ax.set_yscale("log")
        ax.set_xlabel("context length (tokens)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{Path(data['model']).name}: latency against context — {data['machine']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="smollm2", choices=list(FAMILIES))
    ap.add_argument("--contexts", nargs="+", type=int, default=[512, 1024, 2048, 4096, 8192])
    ap.add_argument("--gen", type=int, default=16, help="decode tokens per point")
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--programs", nargs="+", default=["harp", "llama", "ik"], choices=["harp", "llama", "ik"])
    ap.add_argument("--plot-only", action="store_true", help="redraw the PNG from the committed JSON")
    a = ap.parse_args()
    stem = DEST / f"latency-{a.family}"
    DEST.mkdir(parents=True, exist_ok=True)
    if a.plot_only:
        data = json.loads(Path(f"{stem}.json").read_text())
    else:
        data = measure(a)
        Path(f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n")
        Path(f"{stem}.md").write_text(write_table(data) + "\n")
    plot(data, f"{stem}.png")
    print(write_table(data))
    print(f"wrote {stem}.png, .md, .json", file=sys.stderr)


if __name__ == "__main__":
    main()
