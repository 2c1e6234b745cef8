#!/usr/bin/env bash
# One prepared GPU run (issue 23), in a single call of under 8 minutes on the lent GPU machine:
#   1. install latentlab (no network there: missing dependencies come as wheels, --wheels DIR);
#   2. the tests marked `gpu` (CUDA paths, fp16 against fp32, nccl under torchrun on the one GPU);
#   3. synthesis, projection and training timed beside NVIDIA's code on the GPU (--reference DIR, a checkout
#      of stylegan2-ada-pytorch, never committed; their reference ops run where their CUDA extensions cannot
#      build); synthesis also with NVIDIA's fp16 config (num_fp16_res=4, conv_clamp=256); the sharded projection
#      (issue 24): one process, then 2 under torchrun sharing the one GPU (gloo), their codes compared;
#   4. with the time left, the embedded model's training continued from the shipped file, snapshots in $OUT.
# Everything lands in $OUT (the device tool brings it back): log.txt, env.json, tests-gpu.txt, *.jsonl, train/.
#
# Usage (repository root):
#   OUT=/tmp/gc benchmarks/gpu_check.sh --reference ../sg2ada --wheels wheels/     # on the GPU machine
#   OUT=/tmp/gc benchmarks/gpu_check.sh --dry-run --reference /tmp/sg2ada          # here, on the CPU
# --dry-run runs every step on the CPU with tiny sizes and short limits (tests/test_gpu_check.py runs it), so
# the script is known to work before GPU time is spent on it. --budget S caps the whole run (default 450 s).
set -uo pipefail

DRY=0 REF="" WHEELS="" BUDGET=450 PY="${PYTHON:-python3}"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --reference) REF="$2"; shift ;;
    --wheels) WHEELS="$2"; shift ;;
    --budget) BUDGET="$2"; shift ;;
    --python) PY="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
START=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
log() { echo "[gpu_check +$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/log.txt"; }
# run NAME LIMIT CMD...: one step under its own time limit (never past the budget); its output to $OUT/NAME.txt
run() {
  local name="$1" limit="$2"; shift 2
  local l; l=$(left)
  [ "$limit" -gt "$l" ] && limit=$l
  if [ "$limit" -le 5 ]; then log "$name: skipped, the budget is spent"; return 0; fi
  log "$name: start (limit ${limit}s)"
  timeout --kill-after=5 "$limit" "$@" > "$OUT/$name.txt" 2>&1
  local rc=$?
  log "$name: exit $rc$([ $rc -eq 124 ] && echo ' (time limit)')"
  return 0
}

if [ "$DRY" = 1 ]; then
  DEVICE=cpu SIZES="--preset tiny --batch 4 --images 8 --rounds 2" PSIZES="--preset tiny --batch 2 --steps 12"
  TSIZES="--steps 16 --rounds 1 --warmup 1 --batch 4" NSYNTH=64 TRAIN_LIMIT=60 THREADS=2
  SHSIZES="--images 2 --steps 4 --batch 1 --layouts 1x1,2x1"  # same batch and threads per process: same files
else
  DEVICE=cuda SIZES="--preset bench-a --batch 1,8,32 --images 256 --rounds 5" PSIZES="--preset bench-a --batch 1,8,32 --steps 200"
  TSIZES="--steps 64 --rounds 3 --warmup 8 --batch 32" NSYNTH=20000 TRAIN_LIMIT=100000 THREADS=8
  SHSIZES="--images 32 --steps 100 --batch 8 --layouts 1x8,2x4"
fi
log "mode: $([ $DRY = 1 ] && echo dry-run on the CPU || echo GPU), budget ${BUDGET}s, out $OUT"

# 1. install: the image's torch stays; latentlab and what the image lacks come from --wheels
if [ -n "$WHEELS" ]; then
  run install 150 "$PY" -m pip install --no-index --find-links "$WHEELS" -e .
elif [ "$DRY" = 1 ]; then
  run install 150 "$PY" -m pip install --dry-run --no-deps --no-build-isolation -e .
else
  run install 150 "$PY" -m pip install --no-index --no-deps --no-build-isolation -e .
fi
"$PY" - > "$OUT/env.json" 2>>"$OUT/log.txt" <<'EOF'
import json, os, platform, torch, latentlab
cuda = torch.cuda.is_available()
print(json.dumps({"latentlab": latentlab.__version__, "torch": torch.__version__, "cuda": torch.version.cuda,
                  "gpu": torch.cuda.get_device_name(0) if cuda else None,
                  "gpu_mem_gb": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
                  "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}))
EOF
log "env: $(cat "$OUT/env.json")"

# 2. the gpu tests (skipped, not failed, where CUDA is absent: the dry run checks that they are collected)
run tests-gpu 120 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/

# 3. speed beside NVIDIA's code
REFARG=() NVARG=()
[ -n "$REF" ] && REFARG=(--reference "$REF") && NVARG=(--nvidia "$REF")
run synthesis 90 "$PY" benchmarks/bench_synthesis.py $SIZES --device $DEVICE --threads $THREADS --malloc default \
  --impls latentlab,latentlab-bf16,nvidia "${REFARG[@]}"
run synthesis-fp16 60 "$PY" benchmarks/bench_synthesis.py $SIZES --device $DEVICE --threads $THREADS --malloc default \
  --fp16-res 4 --impls latentlab,latentlab-bf16,latentlab-fp16,nvidia,nvidia-fp32 "${REFARG[@]}"
run projection 90 "$PY" benchmarks/bench_projection.py --mode speed $PSIZES --lpips-batch "" --warmup 2 --rounds 1 \
  --precisions fp32,bf16 --device $DEVICE --threads $THREADS "${REFARG[@]}"
run training 90 "$PY" benchmarks/bench_train.py $TSIZES --mode amortized --device $DEVICE --threads $THREADS "${NVARG[@]}"
run sharding 60 "$PY" benchmarks/bench_sharding.py --device $DEVICE --jobs project $SHSIZES --rounds 1 --compare
for f in synthesis synthesis-fp16 projection training sharding; do
  grep '^{' "$OUT/$f.txt" > "$OUT/$f.jsonl" 2>/dev/null || true
done

# 4. the embedded model's training continued from the shipped file (its image count carries on) until the budget
run dataset 60 "$PY" -m latentlab dataset synth --count $NSYNTH --resolution 64 --seed 0 "$OUT/synthfaces-64.zip"
L=$(( $(left) - 10 ))
[ $TRAIN_LIMIT -lt $L ] && L=$TRAIN_LIMIT
if [ -f "$OUT/synthfaces-64.zip" ] && [ $L -gt 20 ]; then
  # a snapshot every 20 kimg (dry run: 0.032), the newest two kept: each is 19 MB and $OUT comes back whole
  SNAP=$([ "$DRY" = 1 ] && echo 0.032 || echo 20) KIMG=$([ "$DRY" = 1 ] && echo 400.1 || echo 100000)
  run train "$L" "$PY" -m latentlab train --data "$OUT/synthfaces-64.zip" --outdir "$OUT/train" \
    --init pretrained/synthfaces-64.safetensors --preset synthfaces-64 --batch 16 --snap $SNAP --keep 2 \
    --kimg $KIMG --device $DEVICE --no-progress
  rm -f "$OUT/synthfaces-64.zip"
else
  log "train: skipped (no data, or under 20 s left)"
fi
log "done in $(( $(date +%s) - START ))s"
