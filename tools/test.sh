#!/usr/bin/env bash
# Sets up a fresh machine (native packages, default model) and runs the whole test suite.
# Release mode: the C kernels are built -O0 in debug builds, too slow for the real-model tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
# The model-family reference tests (Tests/HARPTests/Families) run Gemma 3 270M and Qwen2.5-Coder-0.5B; the tokenizer tests (Tests/HARPTests/Tokenizer) and the seed-configuration models read
# llama.cpp's vocabulary fixtures (models/vocab, from the llama-cpp-python source package).
bash tools/fetch-models.sh gemma3 qwen2.5 vocab
swift build -c release -Xswiftc -enable-testing --build-tests
swift test -c release -Xswiftc -enable-testing --skip-build "$@"
# End-to-end: the chat through a pseudo-terminal (tmux), the server through the openai client and
# hostile clients,
# and the example package that embeds HARP by path (debug build: it only has to compile).
bash tools/test-chat-pty.sh .build/release/harp-run
python3 tools/test-server.py .build/release/harp-run
# Hostile clients against the server, ~30 s (tools/stress-server.py without --quick: the full run).
python3 tools/stress-server.py --quick .build/release/harp-run
swift build --package-path Examples/EngineDemo
