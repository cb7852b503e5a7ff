#!/usr/bin/env bash
# device_train.sh: one training run on the GPU machine (through the device
# tool), everything worth keeping left under $OUT, most important first (a run
# cut short by the call's limit keeps what it wrote):
#   train.out (the whole log), train_log.jsonl, model.tar (the exported
#   checkpoint), eval.tar (with EVAL_TASKS: eval/{new,base}/summary.json and
#   samples.jsonl, the new model and EVAL_BASE on the CUDA backend),
#   fixture.tar (ids + float64 logits for tests/test_default_model.py), quick.tar
#   (quick/summary.json, samples.jsonl, report.html: the quick suite on the new
#   model, CUDA backend).
#   [TRAIN_DATA=.train/x.npz] [EVAL_TASKS=tools/train/eval_niah.jsonl] [EVAL_BASE=models/default|-] \
#   [CONTINUE_FROM=DIR] [FINAL=0] bash tools/train/device_train.sh [train.py options]   (e.g. --time-limit 400)
# EVAL_BASE=- evaluates only the new model. CONTINUE_FROM: a second call on a
# still-warm machine resumes the run it left in /tmp/train (optimiser, schedule
# and plan as they were); on a fresh machine it starts from DIR's weights
# instead (carried, e.g. the previous call's model.tar unpacked). FINAL=0 stops
# after the evaluation (no logits check, no quick suite: a first of two calls).
# Uses dist/hymeval-cuda/hymeval (bash scripts/build_cuda.sh here, carry dist).
# A tokenizer and data made here beforehand (DATA_ONLY=1 make_default.sh .train)
# travel as .train/tokenizer and .train/train.npz (or TRAIN_DATA; carry them)
# and are used as is.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
OUT=${OUT:?run through the device tool, or set OUT}
WORK=/tmp/train
BIN=$PWD/dist/hymeval-cuda/hymeval
DATA=${TRAIN_DATA:-.train/train.npz}
mkdir -p "$WORK"
[ -f "$DATA" ] && cp "$DATA" "$WORK/train.npz"
[ -d .train/tokenizer ] && cp -r .train/tokenizer "$WORK/"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/train.out"
extra=()
if [ -n "${CONTINUE_FROM:-}" ]; then
  if [ -f "$WORK/run/train_state.pt" ]; then
    extra=(--resume); echo "== resuming the run in $WORK/run" | tee -a "$OUT/train.out"
  else
    extra=(--init-from "$CONTINUE_FROM"); echo "== fresh machine: weights from $CONTINUE_FROM" | tee -a "$OUT/train.out"
  fi
fi
HYMEVAL=$BIN CHECK=0 bash tools/train/make_default.sh "$WORK" "$@" "${extra[@]}" 2>&1 | tee -a "$OUT/train.out"
cp "$WORK/run/train_log.jsonl" "$OUT/" 2>/dev/null
tar -C "$WORK/run" -cf "$OUT/model.tar" model 2>/dev/null
if [ -n "${EVAL_TASKS:-}" ]; then
  rm -rf "$WORK/eval"  # a second call on a warm machine evaluates afresh
  pairs=("new:$WORK/run/model")
  [ "${EVAL_BASE:-}" != - ] && pairs+=("base:${EVAL_BASE:-models/default}")
  for pair in "${pairs[@]}"; do
    echo "== ${EVAL_TASKS} on the ${pair%%:*} model (${pair#*:}, cuda)" | tee -a "$OUT/train.out"
    timeout 120 "$BIN" run --tasks "$EVAL_TASKS" --model "${pair#*:}" --device cuda --out "$WORK/eval/${pair%%:*}" \
        --batch 8 2>&1 | tail -n 20 | tee -a "$OUT/train.out"
  done
  tar -C "$WORK" -cf "$OUT/eval.tar" --exclude '*.html' --exclude '*.png' --exclude '*.svg' eval 2>/dev/null
fi
[ "${FINAL:-1}" = 0 ] && { ls -la "$OUT"; exit 0; }
echo "== PyTorch vs the C engine (FP32 logits)" | tee -a "$OUT/train.out"
timeout 150 python3 tools/train/check_logits.py "$WORK/run/model" --hymeval "$BIN" --device cpu --device cuda \
    --write-fixture "$WORK/fixture" 2>&1 | tee -a "$OUT/train.out"
tar -C "$WORK" -cf "$OUT/fixture.tar" fixture 2>/dev/null
echo "== quick suite on the new model (cuda)" | tee -a "$OUT/train.out"
timeout 120 "$BIN" run --tasks tasks/suites/quick.jsonl --model "$WORK/run/model" --device cuda --out "$WORK/quick" \
    --batch 8 2>&1 | tail -n 30 | tee -a "$OUT/train.out"
tar -C "$WORK" -cf "$OUT/quick.tar" quick/summary.json quick/samples.jsonl quick/report.html 2>/dev/null
ls -la "$OUT"
