#!/usr/bin/env bash
# make_default.sh: the whole recipe of models/default, from nothing:
# tokenizer -> data -> training -> export -> logits cross-check.
#   bash tools/train/make_default.sh WORK [train.py options...]
# e.g.  bash tools/train/make_default.sh /tmp/train --time-limit 3000
# Needs build/hymeval (bash scripts/build.sh; or HYMEVAL=path), PyTorch,
# `tokenizers` and `safetensors`. SCALE and LENGTHS (environment) size the
# data, SEED, ONLY and FAR (data.py --seed, --only: e.g. niah,recall, --far:
# needles at least FAR tokens before the question) choose it;
# the defaults are what phases 1-2 were trained on. CHECK_ARGS:
# extra check_logits.py options (e.g. --device cpu --device cuda). DATA_ONLY=1:
# stop after the tokenizer and the data; CHECK=0: after the training.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:?usage: make_default.sh WORK [train.py options]}
shift
HYMEVAL=${HYMEVAL:-build/hymeval}
SCALE=${SCALE:-60}
LENGTHS=${LENGTHS:-256,512,1024,2048}
mkdir -p "$WORK"

# a step whose output is already in WORK is not redone (data can be made on a
# machine without a GPU and carried to the one that trains)
if [ ! -f "$WORK/tokenizer/tokenizer.json" ]; then
  echo "== tokenizer: 4096 pieces, trained on generated text (lengths measured with models/tokenizer)"
  python3 tools/train/data.py --hymeval "$HYMEVAL" --tokenizer models/tokenizer --work "$WORK/tokdata" \
      --scale 4 --lengths 512,1024 --text-only "$WORK/tokdata/texts.jsonl"
  python3 tools/make_tokenizer.py --out "$WORK/tokenizer" --corpus "$WORK/tokdata/texts.jsonl" \
      --vocab-size 4096 --split-digits
fi

if [ ! -f "$WORK/train.npz" ]; then
  echo "== training data (scale $SCALE, lengths $LENGTHS${SEED:+, seed $SEED}${ONLY:+, only $ONLY}${FAR:+, needles >= $FAR tokens back})"
  python3 tools/train/data.py --hymeval "$HYMEVAL" --tokenizer "$WORK/tokenizer" --work "$WORK/data" \
      --scale "$SCALE" --lengths "$LENGTHS" ${SEED:+--seed "$SEED"} ${ONLY:+--only "$ONLY"} ${FAR:+--far "$FAR"} --out "$WORK/train.npz"
fi
[ -n "${DATA_ONLY:-}" ] && exit 0

echo "== training"
python3 tools/train/train.py --data "$WORK/train.npz" --config tools/train/model_config.json \
    --tokenizer "$WORK/tokenizer" --out "$WORK/run" "$@"

[ "${CHECK:-1}" = 0 ] && exit 0  # CHECK=0: the caller runs the check itself
echo "== PyTorch vs the C engine (FP32 logits)"
python3 tools/train/check_logits.py "$WORK/run/model" --hymeval "$HYMEVAL" ${CHECK_ARGS:-}
echo "== done: $WORK/run/model (copy it to models/default to ship it)"
