#!/usr/bin/env python3
"""Measures the llama.cpp reference figures of the family tests (Tests/HARPTests/Families) and
writes one JSON file per model next to this script:

- real models, weights as stored (NAME-llamacpp.json): Qwen2.5-Coder-0.5B and -1.5B, Gemma 3 270M —
  tokenizer ids, top-10 next-token logits, greedy continuations, WikiText-2 perplexity 40 × 512;
- seed-configuration models (seed-NAME-llamacpp.json): random F32 weights in the layer
  configuration of Llama-3.1-8B, Mistral-7B-v0.3, Qwen2-7B and Gemma2-9B with real vocabularies
  (Tests/HARPTestSupport/SeedModels.swift), written by the test `SeedModelExport` into a temporary
  directory — the file's sha256, top-10 logits and greedy continuations with an f32 KV cache, and a
  short perplexity (4 × 128). The tests regenerate the same files from the same seeds.

Usage: python3 Benchmarks/references/measure-families.py LLAMA_CPP_DIR [NAME ...]
LLAMA_CPP_DIR is a llama.cpp source tree built with CMake (build/bin holds libllama.so,
llama-tokenize and llama-perplexity; Benchmarks/build-llamacpp.sh). NAMEs (default: all) are keys of
MODELS or SEEDS. Run from the package root with the models fetched (tools/fetch-models.sh gemma3
qwen2.5 qwen2.5-1.5b vocab) and, for the seeds, the tests built
(swift build -c release -Xswiftc -enable-testing --build-tests).
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

MODELS = {
    "qwen2.5-coder-0.5b-instruct-q4_k_m": "models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    "qwen2.5-coder-1.5b-instruct-q4_k_m": "models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    "gemma-3-270m-q4_k_m": "models/gemma-3-270m-q4_k_m.gguf",
}
SEEDS = ["seed-llama-3.1-8b", "seed-mistral-7b-v0.3", "seed-qwen2-7b", "seed-gemma2-9b"]
TOKENIZER_TEXTS = [
    "Hello, world!",
    " The quick brown fox jumps over the lazy dog.",
    "Numbers 1234567 and 3.14159, dates 2024-01-31;  double  spaces\tand\ttabs\n\nnew lines.",
    "Ünïcödé: naïve café, 日本語のテキスト, emoji 🦙🚀 and Ελληνικά.",
    "def add(a, b):\n    return a + b  # sum\n",
    "<start_of_turn>user\nHi<end_of_turn>\n<|im_start|>user\nHi<|im_end|>",
]
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village by the sea,",
]
# The seed models' two long prompts pass their 32-token sliding window (Gemma2) and original
# context (Llama-3.1), so the window and the RoPE scaling shape the measured logits.
SEED_PROMPTS = [
    "The capital of France is",
    "The history of the city begins with a small fishing village on the northern bank of the river. "
    "Over the following centuries it grew into a market town, then into a port that traded wool, "
    "grain and timber with the cities of the south. By the time the railway arrived, the old walls "
    "had been torn down and the harbour was",
    "def merge_sorted(left, right):\n    result = []\n    i = j = 0\n    while i < len(left) and j < len(right):\n"
    "        if left[i] <= right[j]:\n            result.append(left[i])\n            i += 1\n",
]
GREEDY_STEPS = 16
WIKI = "Benchmarks/data/wikitext-2-raw/wiki.test.raw"
PROTOCOL = ("the text's trailing newline is dropped and it is tokenized whole, with BOS first when the "
            "model's add_bos_token is true; windows from the start, the first token of each window replaced "
            "by BOS when add_bos_token is true; the second half of each window is scored. Flash attention off: "
            "llama.cpp's CPU flash-attention kernel accumulates values in f16")


def run(cmd, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        sys.exit("measure-families: %s failed (%d):\n%s" % (" ".join(cmd), done.returncode, done.stderr[-3000:]))
    return done


class Llama:
    def __init__(self, tree):
        self.tree = os.path.abspath(tree)
        self.bin = os.path.join(self.tree, "build", "bin")
        here = os.path.dirname(os.path.abspath(__file__))
        # A directory of its own: other checkouts may build their own llama-probe at the same time.
        self.probe = os.path.join(tempfile.mkdtemp(prefix="harp-llama-probe-"), "llama-probe")
        run(["cc", "-O2", "-o", self.probe, os.path.join(here, "llama-probe.c"),
             "-I" + os.path.join(self.tree, "include"), "-I" + os.path.join(self.tree, "ggml", "include"),
             "-L" + self.bin, "-lllama", "-Wl,-rpath," + self.bin])
        # The tree unpacked from llama-cpp-python's source package is not a git checkout.
        git = subprocess.run(["git", "-C", self.tree, "rev-parse", "HEAD"], capture_output=True, text=True)
        self.commit = git.stdout.strip() if git.returncode == 0 else "as vendored in llama-cpp-python 0.3.36"

    def shown(self, cmd):
        """A command as recorded: the llama.cpp tree written as $LLAMA_CPP_DIR."""
        return " ".join(cmd).replace(self.tree + "/", "$LLAMA_CPP_DIR/")

    def prompts(self, path, prompts, kv_type):
        return [json.loads(run([self.probe, path, str(GREEDY_STEPS), p, kv_type]).stdout) for p in prompts]

    def perplexity(self, path, context, chunks, protocol):
        cmd = [os.path.join(self.bin, "llama-perplexity"), "-m", path, "-f", WIKI, "-c", str(context),
               "--chunks", str(chunks), "-t", "2", "-fa", "off"]
        out = run(cmd)
        log = out.stdout + out.stderr
        match = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", log)
        # The running estimate after each chunk ("[k]ppl,"), so tests can check a prefix of the chunks.
        running = [float(v) for _, v in re.findall(r"\[(\d+)\]([0-9.]+),", log)]
        return {"command": self.shown(cmd), "protocol": protocol, "chunks": chunks, "context": context,
                "ppl": float(match.group(1)), "uncertainty": float(match.group(2)), "running_ppl": running}


def write(name, result):
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, name + "-llamacpp.json"), "w") as out:
        json.dump(result, out, indent=1, ensure_ascii=False)
        out.write("\n")
    print(name, result["perplexity"]["ppl"], flush=True)


def measure_model(llama, name, path):
    tokenize = [os.path.join(llama.bin, "llama-tokenize"), "-m", path, "--ids", "--log-disable", "-p"]
    write(name, {
        "about": "Reference outputs of llama.cpp (%s, CPU, 2 threads) on %s, weights as stored. "
                 "Measured with Benchmarks/references/measure-families.py." % (llama.commit, path),
        "model": path,
        "llama_cpp_commit": llama.commit,
        "tokenizer": {
            "tool": llama.shown(tokenize[:-1] + ["TEXT"]) + "  (adds BOS when the model's add_bos_token is true; parses special tokens)",
            "cases": [{"text": t, "ids": json.loads(run(tokenize + [t]).stdout)} for t in TOKENIZER_TEXTS],
        },
        "prompts": {
            "tool": "llama-probe.c MODEL %d PROMPT: prompt tokenized with the model's BOS rule, no special-token parsing; "
                    "top-10 logits after the prompt; greedy = argmax for %d steps; flash attention off, f16 KV cache"
                    % (GREEDY_STEPS, GREEDY_STEPS),
            "cases": llama.prompts(path, PROMPTS, "f16"),
        },
        "perplexity": llama.perplexity(path, 512, 40, PROTOCOL),
    })


def measure_seeds(llama, names):
    models = tempfile.mkdtemp(prefix="harp-seeds-")
    try:
        run(["swift", "test", "-c", "release", "-Xswiftc", "-enable-testing", "--skip-build",
             "--filter", "SeedModelExport"], env=dict(os.environ, HARP_SEED_MODELS_DIR=models))
        for name in names:
            path = os.path.join(models, name + ".gguf")
            with open(path, "rb") as f:
                sha = hashlib.sha256(f.read()).hexdigest()
            ppl = llama.perplexity(path, 128, 4, PROTOCOL + "; f16 KV cache (llama.cpp's default, as HARP's Perplexity)")
            ppl["command"] = ppl["command"].replace(models + "/", "$SEED_MODELS/")
            write(name, {
                "about": "Reference outputs of llama.cpp (%s, CPU, 2 threads) on %s.gguf: random F32 weights written "
                         "by Tests/HARPTestSupport/SeedModels.swift. Measured with "
                         "Benchmarks/references/measure-families.py." % (llama.commit, name),
                "model": name,
                "model_sha256": sha,
                "llama_cpp_commit": llama.commit,
                "prompts": {
                    "tool": "llama-probe.c MODEL %d PROMPT f32: prompt tokenized with the model's BOS rule, no "
                            "special-token parsing; top-10 logits after the prompt; greedy = argmax for %d steps; "
                            "flash attention off, f32 KV cache" % (GREEDY_STEPS, GREEDY_STEPS),
                    "cases": llama.prompts(path, SEED_PROMPTS, "f32"),
                },
                "perplexity": ppl,
            })
    finally:
        shutil.rmtree(models, ignore_errors=True)


def main():
    llama = Llama(sys.argv[1])
    names = sys.argv[2:] or list(MODELS) + SEEDS
    unknown = [n for n in names if n not in MODELS and n not in SEEDS]
    if unknown:
        sys.exit("measure-families: unknown model(s) %s; known: %s" % (", ".join(unknown), ", ".join(list(MODELS) + SEEDS)))
    for name in names:
        if name in MODELS:
            measure_model(llama, name, MODELS[name])
    seeds = [n for n in names if n in SEEDS]
    if seeds:
        measure_seeds(llama, seeds)


if __name__ == "__main__":
    main()
