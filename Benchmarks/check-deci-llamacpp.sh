#!/usr/bin/env bash
# Independent check of the deci export: prunes SmolLM2 with HARP (F32 weights, so nothing is
# re-quantized), then measures WikiText-2 perplexity of the native file and of the deci file with
# harp-run, and of the deci file with llama.cpp's llama-perplexity. All three must agree.
# Needs a llama.cpp build (Benchmarks/build-llamacpp.sh or LLAMA_PERPLEXITY=path). Not part of CI.
# PRUNE_ARGS adds harp-prune options, e.g. PRUNE_ARGS="--fit linear --no-fit-bias" checks the
# fitted d × d blocks (deci's linear attention) instead of the α-scaled value-only ones.
set -euo pipefail
cd "$(dirname "$0")/.."
CHUNKS="${CHUNKS:-10}"
PERPLEXITY="${LLAMA_PERPLEXITY:-Benchmarks/out/llama.cpp/build/bin/llama-perplexity}"
[ -x "$PERPLEXITY" ] || { echo "check-deci: $PERPLEXITY not found (run Benchmarks/build-llamacpp.sh)" >&2; exit 1; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
swift build -c release >/dev/null
.build/release/harp-prune -o "$out/harp.gguf" --deci "$out/harp-deci.gguf" --drop-last 8 \
  --nsamples 32 --search-windows 16 --type f32 ${PRUNE_ARGS:-} 2>&1 | grep -E "alpha|calibration"
text=Benchmarks/data/wikitext-2-raw/wiki.test.raw
for f in harp harp-deci; do
  echo "harp-run  $f.gguf: $(.build/release/harp-run perplexity -m "$out/$f.gguf" -f $text --chunks "$CHUNKS" 2>/dev/null)"
done
echo "llama.cpp harp-deci.gguf: $("$PERPLEXITY" -m "$out/harp-deci.gguf" -f $text -c 512 --chunks "$CHUNKS" -t 2 -fa off 2>&1 | grep -o 'Final estimate: .*')"
