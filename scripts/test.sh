#!/usr/bin/env bash
# Installs what is missing (test tools included), builds, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test
bash scripts/build.sh
meson test -C build --print-errorlogs --num-processes "$(nproc)" "$@"
