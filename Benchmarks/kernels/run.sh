#!/bin/sh
# Builds the kernel micro-benchmark against the CKernels sources with clang, as SwiftPM does
# (optimised, no -march: the library dispatches at run time as in the package build), and runs
# it. Args go to the program ("quick" skips the 49152-row matrices; "kquant" runs only the read
# bandwidth and the Q4_K/Q6_K matrices of Qwen2.5-Coder-1.5B).
set -e
here=$(cd "$(dirname "$0")" && pwd)
src="$here/../../Sources/CKernels"
out=${TMPDIR:-/tmp}/harp-kernel-bench
${CC:-clang} -O2 -D_GNU_SOURCE -I"$src/include" "$src"/*.c "$here/bench.c" -o "$out" -lopenblas -lpthread -lm
exec "$out" "$@"
