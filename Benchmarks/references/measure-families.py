#!/usr/bin/env python3
"""Measures the llama.cpp reference figures for the Qwen2 and Gemma 3 family tests
(Tests/HARPTests/Families) and writes one JSON file per model next to this script.

Usage: python3 Benchmarks/references/measure-families.py LLAMA_CPP_DIR
LLAMA_CPP_DIR is a llama.cpp source tree built with CMake (build/bin holds libllama.so,
llama-tokenize and llama-perplexity). Run from the package root; models/ must hold the GGUF files
(tools/fetch-models.sh gemma3 qwen2.5).
"""
import json
import os
import re
import subprocess
import sys

MODELS = {
    "qwen2.5-coder-0.5b-instruct-q4_k_m": "models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    "gemma-3-270m-q4_k_m": "models/gemma-3-270m-q4_k_m.gguf",
}
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
GREEDY_STEPS = 16


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


def main():
    llama = os.path.abspath(sys.argv[1])
    bin_dir = os.path.join(llama, "build", "bin")

    def shown(cmd):
        """A command as recorded: the llama.cpp tree written as $LLAMA_CPP_DIR."""
        return " ".join(cmd).replace(llama + "/", "$LLAMA_CPP_DIR/")

    here = os.path.dirname(os.path.abspath(__file__))
    probe = os.path.join("/tmp", "llama-probe")
    run(["cc", "-O2", "-o", probe, os.path.join(here, "llama-probe.c"),
         "-I" + os.path.join(llama, "include"), "-I" + os.path.join(llama, "ggml", "include"),
         "-L" + bin_dir, "-lllama", "-Wl,-rpath," + bin_dir])
    commit = run(["git", "-C", llama, "rev-parse", "HEAD"]).stdout.strip()

    for name, path in MODELS.items():
        tokenize = [os.path.join(bin_dir, "llama-tokenize"), "-m", path, "--ids", "--log-disable", "-p"]
        tokenizer_cases = [{"text": text, "ids": json.loads(run(tokenize + [text]).stdout)} for text in TOKENIZER_TEXTS]
        prompts = [json.loads(run([probe, path, str(GREEDY_STEPS), prompt]).stdout) for prompt in PROMPTS]
        ppl_cmd = [os.path.join(bin_dir, "llama-perplexity"), "-m", path, "-f",
                   "Benchmarks/data/wikitext-2-raw/wiki.test.raw", "-c", "512", "--chunks", "40", "-t", "2", "-fa", "off"]
        ppl_run = run(ppl_cmd)
        ppl_log = ppl_run.stdout + ppl_run.stderr
        match = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", ppl_log)
        # The running estimate after each chunk ("[k]ppl,"), so tests can check a prefix of the chunks.
        running = [float(v) for _, v in re.findall(r"\[(\d+)\]([0-9.]+),", ppl_log)]
        result = {
            "about": "Reference outputs of llama.cpp (commit %s, CPU, 2 threads) on %s, weights as stored. "
                     "Measured with Benchmarks/references/measure-families.py." % (commit, path),
            "model": path,
            "llama_cpp_commit": commit,
            "tokenizer": {
                "tool": shown(tokenize[:-1] + ["TEXT"]) + "  (adds BOS when the model's add_bos_token is true; parses special tokens)",
                "cases": tokenizer_cases,
            },
            "prompts": {
                "tool": "llama-probe.c MODEL %d PROMPT: prompt tokenized with the model's BOS rule, no special-token parsing; "
                        "top-10 logits after the prompt; greedy = argmax for %d steps; flash attention off" % (GREEDY_STEPS, GREEDY_STEPS),
                "cases": prompts,
            },
            "perplexity": {
                "command": shown(ppl_cmd),
                "protocol": "the text's trailing newline is dropped and it is tokenized whole, with BOS first when the "
                            "model's add_bos_token is true; windows of 512 tokens from the start, the first token of each "
                            "window replaced by BOS when add_bos_token is true; the second half of each window is scored. "
                            "Flash attention off: llama.cpp's CPU flash-attention kernel accumulates values in f16 "
                            "(with it on, llama.cpp measured 17.2237 for Gemma 3 270M and 31.8668 for Qwen2.5-0.5B)",
                "chunks": 40,
                "context": 512,
                "ppl": float(match.group(1)),
                "uncertainty": float(match.group(2)),
                "running_ppl": running,
            },
        }
        with open(os.path.join(here, name + "-llamacpp.json"), "w") as out:
            json.dump(result, out, indent=1, ensure_ascii=False)
            out.write("\n")
        print(name, result["perplexity"]["ppl"])


if __name__ == "__main__":
    main()
