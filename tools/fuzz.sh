#!/usr/bin/env bash
# Fuzzes the GGUF reader, model loader, KV cache and tokenizer loader with libFuzzer + ASan for
# SECONDS (default 60): builds tools/fuzz/ together with Sources/HARP into .build/fuzz/harp-fuzz
# (swiftc -sanitize=fuzzer,address; the C kernels and the SentencePiece shim with clang's ASan),
# writes a seed corpus of tiny models made by the project's writer, and runs. Crashes land in
# .build/fuzz/crashes/. Nothing here is committed but the sources.
#   tools/fuzz.sh 600            # ten minutes, one fuzzing process per core
#   JOBS=1 tools/fuzz.sh 600     # one process
# With JOBS > 1 each process logs to .build/fuzz/fuzz-N.log; the total of executions is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-60}
JOBS=${JOBS:-$(nproc)}
OUT=.build/fuzz
BIN=$(dirname "$(readlink -f "$(command -v swiftc)")")
CLANG="$BIN/clang"
mkdir -p "$OUT/obj" "$OUT/include/CKernels" "$OUT/include/CSentencePiece" "$OUT/crashes"

# The two C targets as Clang modules, as SwiftPM would see them.
cat > "$OUT/include/CKernels/module.modulemap" <<MAP
module CKernels { header "$PWD/Sources/CKernels/include/ckernels.h" export * }
MAP
cat > "$OUT/include/CSentencePiece/module.modulemap" <<MAP
module CSentencePiece { header "$PWD/Sources/CSentencePiece/include/csentencepiece.h" export * }
MAP

# Leaks are not what this looks for (the tokenizer caches live for the process).
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1

# Rebuilt only when a source is newer than the binary.
if [ ! -x "$OUT/harp-fuzz" ] || [ -n "$(find Sources/HARP Sources/CKernels Sources/CSentencePiece tools/fuzz Tests/HARPTestSupport -newer "$OUT/harp-fuzz" -print -quit)" ]; then
SAN="-fsanitize=address,fuzzer-no-link"
objects=()
for c in Sources/CKernels/*.c; do
    o="$OUT/obj/$(basename "$c" .c).o"
    "$CLANG" -c -O1 -g $SAN -D_GNU_SOURCE -I Sources/CKernels/include "$c" -o "$o"
    objects+=("$o")
done
"$CLANG" -c -O1 -g -std=c++17 $SAN -I Sources/CSentencePiece/include $(pkg-config --cflags sentencepiece 2>/dev/null) \
    Sources/CSentencePiece/shim.cpp -o "$OUT/obj/shim.o"
objects+=("$OUT/obj/shim.o")

# HARP and the entry point in one module (-O keeps Swift's overflow and bounds checks).
swiftc -O -g -sanitize=fuzzer,address -parse-as-library -module-name HARP \
    -Xcc -fmodule-map-file="$OUT/include/CKernels/module.modulemap" \
    -Xcc -fmodule-map-file="$OUT/include/CSentencePiece/module.modulemap" \
    -I Sources/CKernels/include -I Sources/CSentencePiece/include \
    $(find Sources/HARP -name '*.swift' | sort) tools/fuzz/*.swift Tests/HARPTestSupport/TinyModel.swift \
    "${objects[@]}" -lopenblas -lsentencepiece -lstdc++ -lm -lpthread \
    -o "$OUT/harp-fuzz" 2> >(grep -v "ignoring import of module 'HARP'\|^import HARP\|^ *|\|^ *\`-\|^\s*$" >&2)
fi

CORPUS="$OUT/corpus"
rm -rf "$CORPUS"
HARP_FUZZ_WRITE_SEEDS="$CORPUS" "$OUT/harp-fuzz"
echo "seed corpus: $(ls "$CORPUS" | wc -l) files, $(du -sh "$CORPUS" | cut -f1)"

args=(-max_total_time="$SECONDS_TO_RUN" -max_len=65536 -rss_limit_mb=2048 -timeout=10
      -artifact_prefix="$PWD/$OUT/crashes/" -print_final_stats=1)
if [ "$JOBS" -le 1 ]; then exec "$OUT/harp-fuzz" "${args[@]}" "$CORPUS"; fi
# libFuzzer writes the jobs' logs into its working directory: run it inside .build/fuzz.
rm -f "$OUT"/fuzz-*.log
status=0
(cd "$OUT" && ./harp-fuzz "${args[@]}" -jobs="$JOBS" -workers="$JOBS" corpus) || status=$?
total=$(awk '/^stat::number_of_executed_units:/ { n += $2 } END { print n + 0 }' "$OUT"/fuzz-*.log)
echo "fuzz: $JOBS processes, ${total:-0} executions in ${SECONDS_TO_RUN} s, $(ls "$OUT/crashes" | wc -l) files in $OUT/crashes"
exit $status
