#!/usr/bin/env bash
# reproduce.sh: models/default from nothing, in the order it was trained.
#   bash tools/train/reproduce.sh WORK [FIRST [LAST]]
# Its lineage (README.md has each phase's story and figures): phases 1 and 2
# (every task, 256-2048 tokens), 3 (retrieval at 256 tokens), 4 (retrieval
# 240-1100), 11 (far needles; in two parts), 12 (every task again), 13 (key
# selection), 15 (documents). Each phase makes its data (seeded: the same
# bytes on any machine), then trains from the previous phase's export for the
# number of steps the recorded run reached (train.py --steps, so a faster or
# slower machine trains the same batches; the recorded runs were stopped by
# the clock). The learning rate follows a cosine over those steps (over more,
# --schedule-steps, for phase 11's first part, which the clock stopped at 69 %
# of its schedule). GPU training is not bit-for-bit deterministic, so the
# result matches the shipped model's figures, not its bytes.
#
# A phase whose WORK/<phase>/model exists is skipped, so a run that stops can
# be started again; FIRST and LAST (phase names: 1 2 3 4 11a 11b 12 13 15)
# run a part, from the previous phase's export in WORK (or INIT=DIR).
# Environment: HYMEVAL (default build/hymeval: the data generators and the
# check), DEVICE (train.py --device; default: cuda where PyTorch sees one),
# TOKENIZER (default models/default: the shipped 4096-piece tokenizer, which
# every phase used; TOKENIZER=new trains one as phase 1 did, from today's
# generators: its pieces differ in order, so every dataset differs too),
# PLAN=1 (print the commands, run nothing).
# Time: phases 1-2 and 11-15 took 430 / 340 / 620 + 400 / 400 / 400 / 400 s
# on an H100 (phases 3 and 4 ran on 2 CPU cores: 1,500 and 2,100 s; a GPU
# does their small batches in a minute or two); the data about 20 min on 2
# cores, most of it the 2048-token RULER chunks.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:?usage: reproduce.sh WORK [FIRST [LAST]]}
FIRST=${2:-1}
LAST=${3:-15}
PHASES=(1 2 3 4 11a 11b 12 13 15)
HYMEVAL=${HYMEVAL:-build/hymeval}
export HYMEVAL
device_opt=()
[ -n "${DEVICE:-}" ] && device_opt=(--device "$DEVICE")

run() {  # a command, echoed; with PLAN=1 only echoed
  echo "+ $*"
  [ "${PLAN:-}" = 1 ] || "$@"
}

index_of() {
  local i
  for i in "${!PHASES[@]}"; do [ "${PHASES[$i]}" = "$1" ] && { echo "$i"; return; }; done
  echo "reproduce.sh: no phase '$1' (phases: ${PHASES[*]})" >&2
  exit 2
}
first=$(index_of "$FIRST")
last=$(index_of "$LAST")

# ---- data: the tokenizer, then each set (make_default.sh DATA_ONLY=1, seeded)
tokenizer() {
  [ -f "$WORK/tokenizer/tokenizer.json" ] && return
  local from=${TOKENIZER:-models/default}
  if [ "$from" != new ]; then
    run mkdir -p "$WORK/tokenizer"
    run cp "$from/tokenizer.json" "$from/tokenizer_config.json" "$WORK/tokenizer/"
  else  # the first step of make_default.sh: 4096 pieces from generated text
    run env DATA_ONLY=1 SCALE=1 LENGTHS=256 ONLY=kv bash tools/train/make_default.sh "$WORK/tokmake"
    run cp -r "$WORK/tokmake/tokenizer" "$WORK/tokenizer"
  fi
}
dataset() {  # NAME VAR=VALUE...: WORK/data/NAME/train.npz
  local name=$1
  shift
  [ -f "$WORK/data/$name/train.npz" ] && return
  run mkdir -p "$WORK/data/$name"
  run cp -r "$WORK/tokenizer" "$WORK/data/$name/"
  run env DATA_ONLY=1 "$@" bash tools/train/make_default.sh "$WORK/data/$name"
}
mix() {  # OUT FILE[:N]...: WORK/data/OUT.npz
  local out=$1
  shift
  [ -f "$WORK/data/$out.npz" ] && return
  run python3 tools/train/mix.py "$@" --out "$WORK/data/$out.npz"
}
d() { echo "$WORK/data/$1/train.npz${2:+:$2}"; }

# ---- one phase: train.py from the previous phase's export
train() {  # PHASE DATA FROM [train.py options]
  local phase=$1 data=$2 from=$3
  shift 3
  if [ -d "$WORK/$phase/model" ] && [ "${PLAN:-}" != 1 ]; then
    echo "== phase $phase: $WORK/$phase/model exists, skipped"
    return
  fi
  echo "== phase $phase"
  local init=()
  [ "$from" != - ] && init=(--init-from "$from")
  run python3 tools/train/train.py --data "$data" --config tools/train/model_config.json \
      --tokenizer "$WORK/tokenizer" --out "$WORK/$phase" "${init[@]}" "${device_opt[@]}" "$@"
}
from_of() {  # the export phase $1 starts from: the previous phase's, or INIT for the first one run
  local i
  i=$(index_of "$1")
  if [ "$i" = "$first" ] && [ -n "${INIT:-}" ]; then echo "$INIT"; return; fi
  [ "$i" = 0 ] && { echo -; return; }
  echo "$WORK/${PHASES[$((i - 1))]}/model"
}
want() { local i; i=$(index_of "$1"); [ "$i" -ge "$first" ] && [ "$i" -le "$last" ]; }

run mkdir -p "$WORK/data"
tokenizer
# the four retrieval phases' options (the answers weighted, the haystack's filler 0.1)
R=(--context-weight 0.1 --answer-weight 4 --warmup 20)

if want 1 || want 2 || want 4; then dataset all; fi  # every task, 256-2048 tokens, data.py's default seed
if want 1; then
  train 1 "$(d all)" "$(from_of 1)" --batch-tokens 32768 --max-batch 128 --epochs 20 --steps 1624 \
      --eval-every 100 --save-every 120
fi
if want 2; then
  train 2 "$(d all)" "$(from_of 2)" --lr 1e-3 --warmup 50 --batch-tokens 32768 --max-batch 128 --epochs 20 \
      --steps 1286 --eval-every 100 --save-every 100 --seed 2
fi
if want 3; then
  dataset short SCALE=20 LENGTHS=256
  train 3 "$(d short)" "$(from_of 3)" --min-tokens 200 --max-tokens 300 "${R[@]}" --lr 1e-3 --batch-tokens 4096 \
      --epochs 5 --steps 195 --eval-every 100 --save-every 300
fi
if want 4; then
  train 4 "$(d all)" "$(from_of 4)" --min-tokens 240 --max-tokens 1100 --context-weight 0.1 --answer-weight 4 \
      --warmup 10 --lr 7e-4 --batch-tokens 4096 --epochs 1 --steps 329 --eval-every 1000 --save-every 300 --seed 4
fi
if want 11a || want 11b || want 12 || want 13 || want 15; then
  dataset far SCALE=250 LENGTHS=512,768,1024 FAR=256 SEED=600011 ONLY=niah  # needles beyond the window
  dataset random SCALE=72 LENGTHS=512,1024,2048 SEED=400009 ONLY=niah,recall
fi
if want 11a || want 11b; then
  mix p11 "$(d far 27000)" "$(d random 11000)"
fi
if want 11a; then  # two calls of 420 + 200 s with a 900 s schedule: 69 % of its cosine
  train 11a "$WORK/data/p11.npz" "$(from_of 11a)" --min-tokens 480 --max-tokens 2100 "${R[@]}" --lr 1e-3 \
      --batch-tokens 65536 --max-batch 128 --epochs 50 --steps 1100 --schedule-steps 1587 --eval-every 100 \
      --save-every 120 --seed 9
fi
if want 11b; then  # the same data, a fresh optimiser, a whole cosine at half the rate
  train 11b "$WORK/data/p11.npz" "$(from_of 11b)" --min-tokens 480 --max-tokens 2100 "${R[@]}" --lr 5e-4 \
      --batch-tokens 65536 --max-batch 128 --epochs 50 --steps 622 --eval-every 100 --save-every 120 --seed 12
fi
if want 12 || want 13 || want 15; then dataset p12 SCALE=60 LENGTHS=512,1024,2048 SEED=700013; fi
if want 12; then
  mix p12 "$(d p12)" "$(d far 8000)" "$(d random 4000)"
  train 12 "$WORK/data/p12.npz" "$(from_of 12)" --min-tokens 240 --max-tokens 2100 "${R[@]}" --lr 5e-4 \
      --batch-tokens 65536 --max-batch 128 --epochs 50 --steps 582 --eval-every 100 --save-every 120 --seed 13
fi
if want 13 || want 15; then
  dataset p13 SCALE=300 LENGTHS=256,512,1024 SEED=800021 ONLY=kv,ar,multikey_1,multikey_2,multikey_3
fi
if want 13; then
  mix p13 "$(d p13)" "$(d p12 12000)" "$(d far 4000)" "$(d random 3000)"
  train 13 "$WORK/data/p13.npz" "$(from_of 13)" --min-tokens 200 --max-tokens 2100 "${R[@]}" --lr 5e-4 \
      --batch-tokens 65536 --max-batch 256 --epochs 50 --steps 573 --eval-every 100 --save-every 120 --seed 17
fi
if want 15; then
  dataset docs SCALE=200 LENGTHS=256,512 SEED=900031 ONLY=docs  # SQuAD-C, SWDE, FDA passages
  mix p15 "$(d docs 60000)" "$(d p13 10000)" "$(d p12 12000)" "$(d far 4000)" "$(d random 3000)"
  train 15 "$WORK/data/p15.npz" "$(from_of 15)" --min-tokens 40 --max-tokens 2100 "${R[@]}" --lr 4e-4 \
      --batch-tokens 65536 --max-batch 512 --epochs 50 --steps 562 --eval-every 100 --save-every 120 --seed 21
fi

last_phase=${PHASES[$last]}
echo "== done: $WORK/$last_phase/model"
[ "${PLAN:-}" = 1 ] && exit 0
if [ "$last_phase" = 15 ]; then
  echo "== PyTorch vs the C engine (FP32 logits)"
  python3 tools/train/check_logits.py "$WORK/15/model" --hymeval "$HYMEVAL"
  echo "== to compare with the shipped model: $HYMEVAL run --tasks tools/train/eval_recall.jsonl --model $WORK/15/model"
fi
