#!/usr/bin/env python3
"""Prunes the default model with HARP and each baseline at the same KV budget and tabulates quality
and speed, all measured by the runtime itself:

- WikiText-2 test perplexity (llama.cpp protocol: `harp-run perplexity -c 512 --chunks 40`);
- greedy agreement with the dense model on held-out prompts (`prompts.txt`, 32 greedy tokens each):
  the share of generated tokens identical to the dense continuation before the first divergence;
- parameters, weight bytes and KV bytes per token (`harp-run bench --json`);
- decode speed at depth 2048 (`harp-run bench -d 2048 -p 0 -n 32`);
- tasks (`harp-run eval`): KL divergence to the dense model over WikiText-2 test (10 windows × 512,
  top-64 base written by the dense model), HellaSwag (acc_norm and llama.cpp's score), ARC-Easy
  (acc_norm), LAMBADA (acc, target perplexity) and NQ-open 5-shot (exact match), each on the first
  EVAL_LIMIT items in file order. With `--eval-only` only these are measured (ready pruned files in
  --out-dir are reused) and only the task table of the report is rewritten.

The budget is HARP's `--drop-last 8` of 30 layers: 8/30 of the KV cache. Head baselines remove the
same share of KV heads (whole KV groups), ShortGPT removes 8 whole layers. HARP+FLAP adds FLAP MLP
pruning with `--mlp-ratio` chosen so its parameter count matches the head baselines'.

usage: Benchmarks/pruning/run.py [--out-dir /tmp/harp-pruning] [--report Benchmarks/pruning/README.md]
                                 [--only LABEL …] [--eval-only] [--eval-limit N]
"""
import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
MODEL = ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf"
WIKI_TEST = ROOT / "Benchmarks/data/wikitext-2-raw/wiki.test.raw"
PROMPTS = Path(__file__).resolve().parent / "prompts.txt"
NOTES_MARKER = "<!-- notes: kept by run.py -->"
EVAL_BEGIN, EVAL_END = "<!-- task table: run.py -->", "<!-- end of task table -->"
# Items per task: about 3 minutes per model on 2 idle cores, so the nine models of the table take
# under 30 minutes on top of perplexity, agreement and speed.
EVAL_LIMIT = 200
EVAL_TASKS = ["hellaswag", "arc_easy", "lambada", "nq_open"]
KL_CHUNKS = 10

# (label, harp-prune arguments)
METHODS = [
    ("HARP", ["--method", "harp", "--drop-last", "8"]),
    ("HARP+FLAP", ["--method", "harp", "--drop-last", "8", "--mlp-ratio", "0.025"]),
    # Not in the HARP paper: pruned blocks keep their calibration mean output (`--compensate`).
    ("HARP, mean-compensated", ["--method", "harp", "--drop-last", "8", "--compensate"]),
    ("HARP+FLAP, mean-compensated", ["--method", "harp", "--drop-last", "8", "--mlp-ratio", "0.025", "--compensate"]),
    # Not in the HARP paper: closed-form refits of the pruned blocks (`--fit`, Benchmarks/pruning/README.md).
    ("HARP, fit output", ["--method", "harp", "--drop-last", "8", "--fit", "output"]),
    ("HARP, fit rank", ["--method", "harp", "--drop-last", "8", "--fit", "rank"]),
    ("HARP, fit linear", ["--method", "harp", "--drop-last", "8", "--fit", "linear"]),
    ("FLAP heads", ["--method", "flap-heads", "--drop-last", "8"]),
    ("Wanda-sp", ["--method", "wanda-sp", "--drop-last", "8"]),
    ("magnitude-sp", ["--method", "magnitude-sp", "--drop-last", "8"]),
    ("ShortGPT", ["--method", "shortgpt", "--drop-last", "8"]),
]


def run(cmd):
    started = time.time()
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{out.stderr}")
    return out.stdout, out.stderr, time.time() - started


def perplexity(harp_run, model):
    stdout, _, _ = run([harp_run, "perplexity", "-m", model, "-f", WIKI_TEST, "-c", "512", "--chunks", "40"])
    line = [l for l in stdout.splitlines() if l.startswith("PPL = ")][-1]
    value, _, err = line[len("PPL = "):].partition(" +/- ")
    return float(value), float(err)


def greedy(harp_run, model, prompts):
    continuations = []
    for p in prompts:
        stdout, _, _ = run([harp_run, "generate", "-m", model, "-p", p, "-n", "32", "--temp", "0", "--ids"])
        continuations.append([int(t) for t in stdout.strip().splitlines()[-1].split()])
    return continuations


def agreement(reference, candidate):
    shares = []
    for ref, cand in zip(reference, candidate):
        same = 0
        while same < min(len(ref), len(cand)) and ref[same] == cand[same]:
            same += 1
        shares.append(same / max(len(ref), 1))
    return sum(shares) / len(shares)


def bench(harp_run, model):
    stdout, _, _ = run([harp_run, "bench", "-m", model, "-d", "2048", "-p", "0", "-n", "32", "-r", "3", "--json"])
    return json.loads(stdout)


def evaluate(harp_run, model, kl_base, limit):
    cmd = [harp_run, "eval", "-m", model, "--limit", str(limit), "--kl", kl_base, "--json"]
    for t in EVAL_TASKS:
        cmd += ["--task", t]
    stdout, _, _ = run(cmd)
    results = {r["task"]: {m["name"]: m["value"] for m in r["metrics"]} for r in json.loads(stdout)}
    return {
        "kld": results["kl"]["kld_mean"], "same_top": results["kl"]["same_top"],
        "hellaswag": results["hellaswag"]["acc_norm"], "hellaswag_llamacpp": results["hellaswag"]["acc_llamacpp"],
        "arc_easy": results["arc_easy"]["acc_norm"], "lambada": results["lambada"]["acc"],
        "lambada_ppl": results["lambada"]["perplexity"], "nq_open": results["nq_open"]["exact_match"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default="/tmp/harp-pruning")
    ap.add_argument("--report", default=str(Path(__file__).resolve().parent / "README.md"))
    ap.add_argument("--bin", default=str(ROOT / ".build/release"), help="directory holding harp-run and harp-prune")
    ap.add_argument("--only", nargs="+", help="evaluate only these methods (labels) besides the dense model")
    ap.add_argument("--eval-only", action="store_true", help="measure only the task columns (reuses pruned files in --out-dir)")
    ap.add_argument("--eval-limit", type=int, default=EVAL_LIMIT, help=f"items per task (default {EVAL_LIMIT})")
    args = ap.parse_args()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    harp_run, harp_prune = Path(args.bin) / "harp-run", Path(args.bin) / "harp-prune"
    prompts = [l.strip() for l in PROMPTS.read_text().splitlines() if l.strip()]

    rows = []
    models = [("dense", MODEL, None)]
    for label, prune_args in METHODS:
        if args.only and label not in args.only:
            continue
        out = out_dir / (re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") + ".gguf")
        if not (args.eval_only and out.exists() and out.with_suffix(".json").exists()):
            stdout, stderr, seconds = run([harp_prune, "-m", MODEL, "-o", out] + prune_args)
            print(f"{label}: pruned in {seconds:.0f} s\n{stdout}", flush=True)
        report = json.loads(out.with_suffix(".json").read_text())
        models.append((label, out, report))

    kl_base = out_dir / "dense.kld"
    run([harp_run, "eval", "-m", MODEL, "--kl-base", kl_base, "--chunks", str(KL_CHUNKS)])
    if args.eval_only:
        rows = []
        for label, path, _ in models:
            rows.append({"label": label, **evaluate(harp_run, path, kl_base, args.eval_limit)})
            print(json.dumps(rows[-1]), flush=True)
        (out_dir / "tasks.json").write_text(json.dumps(rows, indent=2))
        write_task_table(Path(args.report), rows, args.eval_limit)
        return

    dense_greedy = None
    for label, path, report in models:
        tasks = evaluate(harp_run, path, kl_base, args.eval_limit)
        ppl, err = perplexity(harp_run, path)
        continuations = greedy(harp_run, path, prompts)
        if dense_greedy is None:
            dense_greedy = continuations
        b = bench(harp_run, path)
        tg = b["results"][0]
        row = {
            "label": label, "ppl": ppl, "ppl_err": err, "agreement": agreement(dense_greedy, continuations),
            "parameters": b["parameters"], "weight_bytes": b["weightBytes"], "kv_bytes_per_token": b["kvBytesPerToken"],
            "tg": tg["tokensPerSecond"], "tg_sd": tg["stddev"],
            "calibration_ppl": report["after"]["calibrationPerplexity"] if report else None,
            "prune_seconds": report["timings"]["total"] if report else None,
            "alphas": report and [l.get("alpha") for l in report["layers"] if l.get("alpha") is not None],
            **tasks,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    (out_dir / "results.json").write_text(json.dumps(rows, indent=2))
    write_report(Path(args.report), rows, models)
    write_task_table(Path(args.report), rows, args.eval_limit)


def task_table(rows, limit):
    lines = [
        EVAL_BEGIN,
        "",
        f"Tasks (`harp-run eval`, first {limit} items of each file in order; NQ-open 5-shot with the first 5 dev items as "
        f"shots; KL: {KL_CHUNKS} windows × 512 of WikiText-2 test against the dense model, top-64 + tail). "
        "Accuracies in %; ± is the standard error of the dense row (binomial), about the same for every row.",
        "",
        "| model | KL to dense | same top-1 | HellaSwag acc_norm | HellaSwag (llama.cpp) | ARC-Easy acc_norm | LAMBADA acc | LAMBADA PPL | NQ-open EM |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['kld']:.4f} | {100 * r['same_top']:.1f} | {100 * r['hellaswag']:.1f} | "
            f"{100 * r['hellaswag_llamacpp']:.1f} | {100 * r['arc_easy']:.1f} | {100 * r['lambada']:.1f} | "
            f"{r['lambada_ppl']:.1f} | {100 * r['nq_open']:.1f} |")
    d = rows[0]
    se = lambda p: 100 * (p * (1 - p) / max(limit - 1, 1)) ** 0.5
    lines += ["", f"Dense standard errors: HellaSwag ±{se(d['hellaswag']):.1f}, ARC-Easy ±{se(d['arc_easy']):.1f}, "
              f"LAMBADA ±{se(d['lambada']):.1f}, NQ-open ±{se(d['nq_open']):.1f} points.", "", EVAL_END]
    return "\n".join(lines)


def write_task_table(path, rows, limit):
    """Replaces the task table in the report (or puts it before the notes), keeping everything else."""
    text = path.read_text() if path.exists() else NOTES_MARKER + "\n"
    table = task_table(rows, limit)
    if EVAL_BEGIN in text and EVAL_END in text:
        before, _, rest = text.partition(EVAL_BEGIN)
        text = before + table + rest.partition(EVAL_END)[2]
    else:
        before, marker, notes = text.partition(NOTES_MARKER)
        text = before.rstrip("\n") + "\n\n" + table + "\n\n" + marker + notes
    path.write_text(text)
    print(f"wrote the task table to {path}")


def write_report(path, rows, models):
    dense = rows[0]
    lines = [
        "# Pruning benchmark: SmolLM2-135M-Instruct (Q4_1), 30 layers, budget = 8/30 of the KV cache",
        "",
        "Produced by `Benchmarks/pruning/run.py` (all numbers measured by this runtime on this machine: 2 shared cores).",
        "Calibration: 128 windows × 128 tokens of WikiText-2 valid (seed 0). Perplexity: WikiText-2 test, 40 chunks × 512 "
        "(llama.cpp protocol). Agreement: greedy 32-token continuations of the prompts in `prompts.txt`, share of tokens "
        "equal to the dense model's before the first divergence. Decode: `harp-run bench -d 2048 -p 0 -n 32 -r 3`.",
        "",
        "| model | WikiText-2 PPL | calib. PPL | greedy agreement | parameters | weight bytes | KV bytes/token | tg32 @ d2048 (t/s) | prune time (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        calib = f"{r['calibration_ppl']:.3f}" if r["calibration_ppl"] else ""
        prune = f"{r['prune_seconds']:.0f}" if r["prune_seconds"] else ""
        lines.append(
            f"| {r['label']} | {r['ppl']:.3f} ± {r['ppl_err']:.3f} | {calib} | {100 * r['agreement']:.1f}% | "
            f"{r['parameters'] / 1e6:.2f} M | {r['weight_bytes'] / 2**20:.2f} MiB | {r['kv_bytes_per_token']} "
            f"({100 * r['kv_bytes_per_token'] / dense['kv_bytes_per_token']:.1f}%) | {r['tg']:.1f} ± {r['tg_sd']:.1f} | {prune} |")
    for label, _, report in models:
        if report and report["searchedLayers"] and report.get("fit", "alpha") == "alpha":
            alphas = ", ".join(f"{report_alpha(report, l):.1f}" for l in report["searchedLayers"])
            lines.append(f"\n{label} α (layers {report['searchedLayers'][0]}…{report['searchedLayers'][-1]}, top first): [{alphas}]")
    # Hand-written notes below the marker survive a rerun.
    notes = path.read_text().partition(NOTES_MARKER)[2] if path.exists() else ""
    path.write_text("\n".join(lines) + "\n\n" + NOTES_MARKER + (notes or "\n"))
    print(f"wrote {path}")


def report_alpha(report, layer):
    return next(l["alpha"] for l in report["layers"] if l["index"] == layer)


if __name__ == "__main__":
    main()
