#!/usr/bin/env bash
# Runs on the GPU machine (device tool), in the repository root, with dist/
# carried (bash scripts/build_cuda.sh here first). Every step logs to $OUT:
#   kernels.log  test_kernels (every kernel vs its CPU reference) + --bench
#   backend.log  test_backend (whole backend vs the CPU engine, tiny models)
#   logits.log   three-way logits of models/default (PyTorch, CPU, CUDA)
#   bench_*.json hymeval bench --profile on a random Hymba-1.5B
#   ncu.log      Nsight Compute on the attention kernels of test_kernels --bench
#   drift.log    rope_drift of models/default on the GPU and on the CPU, side by side
#   erf.log      erf of models/default on the GPU and on the CPU, side by side
#   NAME.tar.gz  the nightly suite's results directory NAME from a GPU run (NIGHTLY_DIR,
#                NIGHTLY_MODEL, NIGHTLY_ONLY, NIGHTLY_LIMIT; carry the directory in to resume)
#   sanitizer.log compute-sanitizer memcheck, racecheck and synccheck over test_kernels --small
#                and memcheck over test_backend
#   switch_checks.log test_kernels, test_backend with the opt-in/opt-out paths
#   switches.log the opt-in/opt-out paths timed on and off (bench JSON, one line each)
# usage: scripts/gpu_checks.sh [STEP...]   (steps: kernels backend logits bench grid ncu drift erf nightly sanitizer
#        switch_checks switches; default: the first four)
set -uo pipefail
out="${OUT:-/tmp/gpu-out}"; mkdir -p "$out"
bin=dist/hymeval-cuda
steps=("$@"); [ ${#steps[@]} -eq 0 ] && steps=(kernels backend logits bench)
big=/tmp/h15
make_big() { [ -f "$big/config.json" ] || "$bin/hymeval" init-model --config models/configs/hymba-1.5b.json --out "$big" >/dev/null; }
# runs measurement KIND of models/default on the GPU and on the CPU and prints
# every summary metric of the two side by side into $out/KIND.log
side_by_side() {
  local kind=$1; shift
  for dev in cuda cpu; do
    "$bin/hymeval" "$kind" models/default --device "$dev" --out "/tmp/$kind-$dev" "$@" >/dev/null 2>"$out/$kind-$dev.err"
  done
  python3 - "$kind" >"$out/$kind.log" 2>&1 <<'PY'
import json, sys
kind, rows = sys.argv[1], {}
for dev in ("cuda", "cpu"):
    for m in json.load(open(f"/tmp/{kind}-{dev}/summary.json"))["metrics"]:
        rows.setdefault((m["metric"], m["group"]), {})[dev] = m["value"]
for (metric, group), v in sorted(rows.items()):
    print(f"{metric:32s} {group:12s} cuda {v.get('cuda', float('nan')):12.5g} cpu {v.get('cpu', float('nan')):12.5g}")
PY
}
for step in "${steps[@]}"; do
  t0=$(date +%s)
  case "$step" in
    kernels) { "$bin/test_kernels"; "$bin/test_kernels" --bench; } >"$out/kernels.log" 2>&1 ;;
    backend) "$bin/test_backend" --bin "$bin/hymeval" >"$out/backend.log" 2>&1 ;;
    logits) python3 tools/train/check_logits.py models/default --hymeval "$bin/hymeval" --device cpu --device cuda >"$out/logits.log" 2>&1 ;;
    bench)
      make_big
      # the figures (decode steps replay their CUDA graph), then where the time goes (--profile)
      "$bin/hymeval" bench "$big" --batch 1 --context 8192 --decode 128 --json >"$out/bench_b1.json" 2>"$out/bench.err"
      "$bin/hymeval" bench "$big" --batch 128 --context 8192 --decode 32 --repeats 2 --json >"$out/bench_b128.json" 2>>"$out/bench.err"
      "$bin/hymeval" bench "$big" --batch 128 --context 8192 --decode 16 --repeats 1 --profile --json >"$out/bench_b128_profile.json" 2>>"$out/bench.err" ;;
    grid)
      make_big
      for ctx in 1024 4096 8192 32768; do for b in 1 8 32 128; do
        "$bin/hymeval" bench "$big" --batch "$b" --context "$ctx" --decode 16 --repeats 1 --json 2>&1 | tr -d '\n'; echo
      done; done >"$out/grid.jsonl" ;;
    ncu)
      ncu=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
      sections="--section SpeedOfLight --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section SchedulerStats"
      { "$ncu" -k prefill_kernel --launch-skip 4 --launch-count 1 $sections "$bin/test_kernels" --small --bench
        "$ncu" -k decode_kernel --launch-skip 64 --launch-count 1 $sections "$bin/test_kernels" --small --bench
      } >"$out/ncu.log" 2>&1 ;;
    sanitizer)
      san=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
      { for tool in memcheck racecheck synccheck; do
          echo "== $tool: test_kernels --small"
          "$san" --tool "$tool" --error-exitcode 99 "$bin/test_kernels" --small | tail -n 3; echo "rc=${PIPESTATUS[0]}"
        done
        echo "== memcheck: test_backend"
        "$san" --tool memcheck --error-exitcode 99 "$bin/test_backend" --bin "$bin/hymeval" | tail -n 3; echo "rc=${PIPESTATUS[0]}"
      } >"$out/sanitizer.log" 2>&1 ;;
    switch_checks)
      # the opt-in or opt-out paths' checks: HYMEVAL_GEMM_PLANS=1 (no gain measured yet) and
      # HYMEVAL_PDL=0 (programmatic dependent launch off), HYMEVAL_ATTN_WGMMA=0 (the mma.sync
      # prefill attention, default before the wgmma kernels), =3 (the non-persistent wgmma kernel) and =8 (persistent,
      # fast copier, pipelined; the default is 7); test_backend compares HYMEVAL_ROPE_STORE=0
      # and HYMEVAL_SSM_STEP=0 with the default itself
      { HYMEVAL_GEMM_PLANS=1 "$bin/test_kernels" | tail -n 2
        HYMEVAL_PDL=0 "$bin/test_kernels" | tail -n 2
        HYMEVAL_PDL=0 "$bin/test_backend" --bin "$bin/hymeval" | tail -n 2
        HYMEVAL_ATTN_WGMMA=0 "$bin/test_backend" --bin "$bin/hymeval" | tail -n 2  # the mma.sync prefill attention
        HYMEVAL_ATTN_WGMMA=3 "$bin/test_backend" --bin "$bin/hymeval" | tail -n 2  # the one-block-a-tile wgmma kernel
        HYMEVAL_ATTN_WGMMA=8 "$bin/test_backend" --bin "$bin/hymeval" | tail -n 2  # persistent, pipelined
      } >"$out/switch_checks.log" 2>&1 ;;
    switches)
      # the switches timed against the default, twice each: HYMEVAL_PDL; HYMEVAL_ROPE_STORE,
      # HYMEVAL_SSM_STEP (on up to 8 rows; =1 forces it at batch 128 too), HYMEVAL_FUSE_AVG (=0: the decode step's separate kernels);
      # HYMEVAL_GEMM_PLANS
      make_big
      { bench_with() { echo "== $1 $2"; env "$1" "$bin/hymeval" bench "$big" "${@:2}" --json 2>&1 | tr -d '\n'; echo; }
        for sw in HYMEVAL_PDL HYMEVAL_ROPE_STORE HYMEVAL_SSM_STEP HYMEVAL_FUSE_AVG; do
          for v in 0 1 0 1; do bench_with "$sw=$v" --batch 1 --context 8192 --decode 64; done
        done
        for v in 1 0 1 0; do bench_with HYMEVAL_GEMM_PLANS=$v --batch 1 --context 1024 --decode 16; done
        for sw in HYMEVAL_ROPE_STORE HYMEVAL_SSM_STEP; do
          for v in 1 0; do bench_with "$sw=$v" --batch 128 --context 8192 --decode 16 --repeats 1; done
        done
        "$bin/test_kernels" --bench-only | grep -E "^gemm|^attn_decode"
      } >"$out/switches.log" 2>&1 ;;
    drift) side_by_side drift --set length=256 --set num_sequences=1 --set 'deltas=[0,16,1000,100000]' ;;
    erf) side_by_side erf --set 'lengths=[256,512]' --set num_sequences=1 ;;
    nightly)
      # the nightly suite on the GPU into $NIGHTLY_DIR (default results/gpu-nightly; carry it
      # back in to resume), stopped after $NIGHTLY_LIMIT s; the directory comes back as a tarball
      dir="${NIGHTLY_DIR:-results/gpu-nightly}"
      only=(); [ -n "${NIGHTLY_ONLY:-}" ] && only=(--only "$NIGHTLY_ONLY")
      timeout "${NIGHTLY_LIMIT:-400}" "$bin/hymeval" run --device cuda --model "${NIGHTLY_MODEL:-models/default}" \
        --tasks tasks/suites/nightly.jsonl --out "$dir" --resume "${only[@]}" >"$out/nightly-$(basename "$dir").log" 2>&1
      echo "run rc=$?" >>"$out/nightly-$(basename "$dir").log"
      tar czf "$out/$(basename "$dir").tar.gz" -C "$(dirname "$dir")" "$(basename "$dir")" ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
  echo "== $step rc=$? $(( $(date +%s) - t0 )) s" | tee -a "$out/steps.log"
done
