#!/usr/bin/env bash
# device_train.sh: one training run on the GPU machine (through the device
# tool), everything worth keeping left under $OUT:
#   model.tar (the exported checkpoint), fixture.tar (ids + float64 logits for
#   tests/test_default_model.py), train.out (the whole log), train_log.jsonl,
#   quick_samples.jsonl, quick_summary.json, quick_report.html (the quick suite on
#   the new model, CUDA backend).
#   bash tools/train/device_train.sh [train.py options]   (e.g. --time-limit 400)
# Uses dist/hymeval-cuda/hymeval (bash scripts/build_cuda.sh here, carry dist).
# A tokenizer and data made here beforehand (DATA_ONLY=1 make_default.sh .train)
# travel as .train/tokenizer and .train/train.npz (carry them) and are used as is.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
OUT=${OUT:?run through the device tool, or set OUT}
WORK=/tmp/train
BIN=$PWD/dist/hymeval-cuda/hymeval
mkdir -p "$WORK"
[ -f .train/train.npz ] && cp .train/train.npz "$WORK/"
[ -d .train/tokenizer ] && cp -r .train/tokenizer "$WORK/"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/train.out"
HYMEVAL=$BIN CHECK_ARGS="--device cpu --device cuda --write-fixture $WORK/fixture" \
    bash tools/train/make_default.sh "$WORK" "$@" 2>&1 | tee -a "$OUT/train.out"
cp "$WORK/run/train_log.jsonl" "$OUT/" 2>/dev/null
tar -C "$WORK/run" -cf "$OUT/model.tar" model 2>/dev/null
tar -C "$WORK" -cf "$OUT/fixture.tar" fixture 2>/dev/null
echo "== quick suite on the new model (cuda)" | tee -a "$OUT/train.out"
"$BIN" run --tasks tasks/suites/quick.jsonl --model "$WORK/run/model" --device cuda --out "$WORK/quick" \
    --batch 8 2>&1 | tail -n 30 | tee -a "$OUT/train.out"
cp "$WORK/quick/samples.jsonl" "$OUT/quick_samples.jsonl" 2>/dev/null
cp "$WORK/quick/summary.json" "$OUT/quick_summary.json" 2>/dev/null
cp "$WORK/quick/report.html" "$OUT/quick_report.html" 2>/dev/null
ls -la "$OUT"
