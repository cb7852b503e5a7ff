#!/usr/bin/env bash
# Configures (once) and builds the CPU variant into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  meson setup build -Dcuda=disabled --buildtype=release >/dev/null
fi
ninja -C build >/dev/null
echo "== built build/hymeval"
