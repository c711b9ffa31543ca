#!/usr/bin/env python3
"""Measures llama.cpp's reference for Llama 3.1-style RoPE scaling (Tests/HARPTests/Reference/
RopeFrequencyReferenceTests.swift) and writes smollm2-rope-freqs-llamacpp.json next to this script.

The model is SmolLM2-135M-Instruct (models/, Q4_1) with every tensor dequantized to F32 by gguf-py
and one tensor added: rope_freqs.weight holding the factors llama.cpp's converter computes for
rope_scaling {"rope_type": "llama3", factor 8, low_freq_factor 1, high_freq_factor 4,
original_max_position_embeddings 8192} at SmolLM2's head size and RoPE base (computed here from the
converter's formula). llama.cpp applies them as ggml_rope_ext's freq_factors. The same prompts are
also measured on the F32 copy without the tensor, to show the factors change llama.cpp's output.

Usage: python3 Benchmarks/references/measure-rope-freqs.py LLAMA_CPP_DIR
LLAMA_CPP_DIR is a llama.cpp source tree built with CMake (build/bin holds libllama.so); its
gguf-py is used to read and write GGUF. Run from the package root. The two temporary F32 files
(~540 MB each) are written to /tmp and removed.
"""
import json
import math
import os
import subprocess
import sys

SOURCE = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
FACTOR, LOW, HIGH, ORIGINAL = 8.0, 1.0, 4.0, 8192
WIKITEXT = "Benchmarks/data/wikitext-2-raw/wiki.test.raw"
# Short prompts, and ~180 tokens of WikiText-2 test (positions where the scaled low-frequency pairs
# have turned far enough for the factors to matter beyond rounding).
PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
]
LONG_PROMPT_CHARS = 800
GREEDY_STEPS = 24


def llama3_factors(head_dim, base):
    """One divisor per rotated pair, as convert_hf_to_gguf.py computes for rope_type llama3."""
    out = []
    for i in range(0, head_dim, 2):
        wavelength = 2 * math.pi * base ** (i / head_dim)
        if wavelength < ORIGINAL / HIGH:
            out.append(1.0)
        elif wavelength > ORIGINAL / LOW:
            out.append(FACTOR)
        else:
            smooth = (ORIGINAL / wavelength - LOW) / (HIGH - LOW)
            out.append(1 / ((1 - smooth) / FACTOR + smooth))
    return out


def write_f32_copy(gguf, np, path, factors):
    reader = gguf.GGUFReader(SOURCE)
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(path, arch)
    for field in reader.fields.values():
        if field.name == "general.architecture" or field.name.startswith("GGUF."):
            continue
        if field.name == "general.file_type":
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for t in reader.tensors:
        values = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        # gguf-py shapes are innermost-first; numpy arrays outermost-first.
        writer.add_tensor(t.name, values.reshape([int(n) for n in reversed(t.shape)]))
    if factors is not None:
        writer.add_tensor("rope_freqs.weight", np.array(factors, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return reader


def main():
    llama = os.path.abspath(sys.argv[1])
    sys.path.insert(0, os.path.join(llama, "gguf-py"))
    import gguf
    import numpy as np

    bin_dir = os.path.join(llama, "build", "bin")
    here = os.path.dirname(os.path.abspath(__file__))
    probe = os.path.join("/tmp", "llama-probe")
    subprocess.run(["cc", "-O2", "-o", probe, os.path.join(here, "llama-probe.c"),
                    "-I" + os.path.join(llama, "include"), "-I" + os.path.join(llama, "ggml", "include"),
                    "-L" + bin_dir, "-lllama", "-Wl,-rpath," + bin_dir], check=True)
    commit = subprocess.run(["git", "-C", llama, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()

    reader = gguf.GGUFReader(SOURCE)
    head_dim = int(reader.fields["llama.embedding_length"].contents()) // int(reader.fields["llama.attention.head_count"].contents())
    base = float(reader.fields["llama.rope.freq_base"].contents())
    factors = llama3_factors(head_dim, base)

    with open(WIKITEXT, encoding="utf-8") as fh:
        prompts = PROMPTS + [fh.read()[:LONG_PROMPT_CHARS]]
    results = {}
    for name, f in [("with_rope_freqs", factors), ("without_rope_freqs", None)]:
        path = "/tmp/smollm2-f32-%s.gguf" % name
        try:
            write_f32_copy(gguf, np, path, f)
            results[name] = [json.loads(subprocess.run([probe, path, str(GREEDY_STEPS), p], check=True,
                                                       capture_output=True, text=True).stdout) for p in prompts]
        finally:
            if os.path.exists(path):
                os.remove(path)

    out = {
        "about": "llama.cpp (commit %s, CPU) on %s dequantized to F32 (gguf-py) with rope_freqs.weight added: "
                 "llama3 factors for factor %g, low_freq_factor %g, high_freq_factor %g, original context %d at "
                 "head_dim %d, base %g. The last prompt is the first %d characters of %s. Measured with Benchmarks/references/measure-rope-freqs.py; prompts via "
                 "llama-probe.c (BOS rule of the model, top-10 logits, greedy with margins, flash attention off)."
                 % (commit, SOURCE, FACTOR, LOW, HIGH, ORIGINAL, head_dim, base, LONG_PROMPT_CHARS, WIKITEXT),
        "llama_cpp_commit": commit,
        "rope_freqs": factors,
        "with_rope_freqs": results["with_rope_freqs"],
        "without_rope_freqs": results["without_rope_freqs"],
    }
    with open(os.path.join(here, "smollm2-rope-freqs-llamacpp.json"), "w") as fh:
        json.dump(out, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    for name in ("with_rope_freqs", "without_rope_freqs"):
        print(name, [case["greedy_ids"] for case in results[name]])


if __name__ == "__main__":
    main()
