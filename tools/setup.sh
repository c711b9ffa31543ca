#!/usr/bin/env bash
# One-time setup for a fresh Debian machine: native libraries, the default model, a release build.
# Safe to re-run: every step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
for p in libopenblas-dev libsentencepiece-dev libomp-dev pkg-config tmux; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "setup: installing ${need_pkgs[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

bash tools/fetch-models.sh "${HARP_MODELS:-smollm2}"
