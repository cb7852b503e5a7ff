#!/usr/bin/env bash
# Quick start: install what is missing, build, and run the main job on the
# embedded default model (models/default).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
build/hymeval inspect models/default
echo
echo "== hymeval generate models/default --prompt 'The key to the vault is' --max-tokens 32"
build/hymeval generate models/default --prompt "The key to the vault is" --max-tokens 32
