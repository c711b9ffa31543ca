#!/usr/bin/env bash
# Builds llama.cpp's benchmark and reference tools from the llama-cpp-python source package on PyPI
# (the only registry reachable here), into Benchmarks/out/llama.cpp (git-ignored). For side-by-side
# measurements only; never part of CI. Takes ~20 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
dest=Benchmarks/out/llama.cpp
if [ ! -d "$dest" ]; then
  python3 -m pip install -q cmake ninja scikit-build-core
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps --no-build-isolation --no-binary llama-cpp-python -d "$tmp" "llama-cpp-python==$VERSION"
  tar xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp"
  mkdir -p Benchmarks/out
  mv "$tmp"/llama_cpp_python-*/vendor/llama.cpp "$dest"
fi
cmake -S "$dest" -B "$dest/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF >/dev/null
ninja -C "$dest/build" llama-bench llama-perplexity llama-tokenize llama-batched-bench llama-completion llama-quantize
echo "built: $dest/build/bin"
