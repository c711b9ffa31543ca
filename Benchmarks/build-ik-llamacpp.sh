#!/usr/bin/env bash
# Builds ik_llama.cpp's llama-bench and llama-batched-bench (the second peer of
# Benchmarks/compare_llamacpp.py) from the source vendored in the ik-llama-cpp-python source
# package on PyPI, into Benchmarks/out/ik_llama.cpp (git-ignored). For side-by-side measurements
# only; never part of CI. Takes ~25 minutes on 2 cores.
#
# The package lacks common/cmake/build-info-gen-cpp.cmake, which its CMakeLists.txt runs to make
# build-info.cpp; a four-line stand-in written here configures common/build-info.cpp.in with the
# package version as the commit (llama-bench prints it as build_commit).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${IK_LLAMA_CPP_PYTHON_VERSION:-0.1.5}"
dest="${IK_LLAMA_CPP_DIR:-Benchmarks/out/ik_llama.cpp}"
if [ ! -d "$dest" ]; then
  python3 -m pip install -q cmake ninja scikit-build-core
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps --no-build-isolation --no-binary :all: -d "$tmp" "ik-llama-cpp-python==$VERSION"
  tar xzf "$tmp"/ik_llama_cpp_python-*.tar.gz -C "$tmp"
  mkdir -p Benchmarks/out
  mv "$tmp"/ik_llama_cpp_python-*/vendor/ik_llama.cpp "$dest"
fi
gen="$dest/common/cmake/build-info-gen-cpp.cmake"
if [ ! -f "$gen" ]; then
  mkdir -p "$(dirname "$gen")"
  cat >"$gen" <<CMAKE
include(\${CMAKE_CURRENT_LIST_DIR}/../../cmake/build-info.cmake)
set(BUILD_COMMIT "ik-llama-cpp-python-$VERSION")
configure_file(\${CMAKE_CURRENT_LIST_DIR}/../build-info.cpp.in \${CMAKE_CURRENT_LIST_DIR}/../build-info.cpp)
CMAKE
fi
cmake -S "$dest" -B "$dest/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF >/dev/null
ninja -C "$dest/build" llama-bench llama-batched-bench
echo "built: $dest/build/bin"
