#!/bin/sh
# Builds and runs the memory-bandwidth probe; args go to the program
# ([MiB per thread, default 512] [threads, default 2] [passes, default 5] [--json]).
set -e
here=$(cd "$(dirname "$0")" && pwd)
out=${TMPDIR:-/tmp}/harp-bandwidth
${CC:-cc} -O2 -pthread "$here/bandwidth.c" -o "$out"
exec "$out" "$@"
