#!/usr/bin/env bash
# Sets up a fresh machine (native packages, default model), builds, and starts a chat.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
swift build -c release --product harp-run >&2
exec .build/release/harp-run chat "$@"
