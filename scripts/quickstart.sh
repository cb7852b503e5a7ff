#!/usr/bin/env bash
# Quick start: install what is missing, build, and run the main job on the
# embedded default model (models/default).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
echo "== hymeval run --model models/default --tasks tasks/suites/quick.jsonl --out results/quick"
rm -rf results/quick
build/hymeval run --model models/default --tasks tasks/suites/quick.jsonl --out results/quick
