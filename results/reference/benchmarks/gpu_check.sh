#!/usr/bin/env bash
# GPU check (issue 22): one command, at most ~8 minutes on one H200-class GPU, everything into one folder.
#
# Usage:  results/reference/benchmarks/gpu_check.sh [--device cuda|cpu] [--out DIR] [--inputs DIR]
#
# The GPU machine has its own Python 3.12 and torch but neither submitit nor clean-fid, and no network.
# What it lacks travels with the checkout in the git-ignored folder --inputs (default
# results/reference/benchmarks/gpu_inputs/, 64 MiB at most):
#   wheels/   submitit, clean-fid, setuptools<80 (the official code's pkg_resources) and what they need
#             beyond torch (pip download --python-version 3.12 --only-binary :all: ... -d wheels/)
#   MNIST/    MNIST/raw/*-ubyte (the R3BENCH_DATA root)
#   R3GAN/    a checkout of brownvc/R3GAN (for against_official.py)
# Steps (each one timed, its status in summary.json; a failing step does not stop the others):
#   1 environment   device name, torch and CUDA versions
#   2 install       pip install --no-index from wheels/ of whatever of submitit / clean-fid is missing
#   3 host_sync     host reads per training step (results/reference/benchmarks/host_sync.py) on the device
#   4 bench         `r3bench bench` of Config E at full Stacked MNIST and FFHQ-256 width, bf16 and fp32,
#                   with the measured and the estimated peak memory (micro-batch where the batch needs it)
#   5 official      results/reference/benchmarks/against_official.py (img/s, peak memory, FLOPs, MFU) when R3GAN/ is there
#   6 table3        a short `r3bench run table3 --preset gpu` (modes/KL at the end)
# --device cpu: the same steps at tiny size on the CPU (seconds; run by tests/runners/test_gpu_check.py).
set -uo pipefail

DEVICE=cuda
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
OUT="$ROOT/results/reference/benchmarks/gpu_check"
INPUTS="$ROOT/results/reference/benchmarks/gpu_inputs"
PYTHON="${PYTHON:-python3}"
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --inputs) INPUTS="$2"; shift 2 ;;
    *) echo "gpu_check.sh: unknown argument $1 (expected --device, --out, --inputs)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in cpu|cuda) ;; *) echo "gpu_check.sh: --device: expected cpu or cuda, got $DEVICE" >&2; exit 2 ;; esac

mkdir -p "$OUT"
cd "$ROOT" || exit 2
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export R3BENCH_DATA="${R3BENCH_DATA:-$INPUTS}"
STATUS="$OUT/steps.jsonl"
: > "$STATUS"

# Sizes: paper width on the GPU; tiny on the CPU (the code path, not the speed).
if [ "$DEVICE" = cuda ]; then
  WIDTH=1.0; BATCH_MNIST=64; BATCH_FFHQ=32; STEPS=10; WARMUP=3; PRECISIONS="bf16 fp32"; FFHQ=ffhq256
  OFFICIAL_ARGS="--preset stackedmnist --width 1.0 --batch 64 --pairs 6 --device cuda --precision bf16 --peak-tflops 989"
  TABLE3_ARGS="duration_kimg=8 tick_kimg=4 score_ticks=0 eval_samples=10000 seeds=[0]"
  HOST_SYNC_ARGS=""
else
  WIDTH=0.03125; BATCH_MNIST=4; BATCH_FFHQ=2; STEPS=1; WARMUP=1; PRECISIONS="fp32"; FFHQ=ffhq64
  OFFICIAL_ARGS="--preset stackedmnist --width 0.0625 --batch 4 --pairs 1 --device cpu --precision fp32"
  TABLE3_ARGS="--no-analyses device=cpu threads=1 model_args.width=0.015625 batch=8 duration_kimg=0.016 tick_kimg=0.008 burn_in_kimg=0.008 score_ticks=0 eval_samples=128 seeds=[0]"
  HOST_SYNC_ARGS="--quick"
fi

step() {  # step NAME COMMAND...: run, time, record {"step", "status", "seconds"} and keep the log
  local name="$1"; shift
  local start end rc
  start=$(date +%s%N)
  "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  end=$(date +%s%N)
  local status=ok
  [ $rc -eq 0 ] || status="failed (exit $rc)"
  [ $rc -eq 75 ] && status="skipped ($(tail -n 1 "$OUT/$name.log"))"
  printf '{"step": "%s", "status": "%s", "seconds": %s}\n' "$name" "$status" "$(awk "BEGIN {printf \"%.1f\", ($end - $start) / 1e9}")" >> "$STATUS"
  echo "gpu_check: $name: $status"
}

environment() {
  "$PYTHON" - "$DEVICE" <<'EOF'
import json, platform, sys
import torch
device = sys.argv[1]
info = dict(device=device, torch=torch.__version__, python=platform.python_version(), cuda=torch.version.cuda,
            device_name=torch.cuda.get_device_name() if device == "cuda" else platform.processor() or platform.machine(),
            memory_gb=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if device == "cuda" else None)
if device == "cuda" and not torch.cuda.is_available():
    sys.exit("CUDA is not available")
print(json.dumps(info))
EOF
}

install() {
  local missing=()
  "$PYTHON" -c "import submitit" 2>/dev/null || missing+=(submitit)
  "$PYTHON" -c "import cleanfid" 2>/dev/null || missing+=(clean-fid)
  "$PYTHON" -c "import pkg_resources" 2>/dev/null || missing+=("setuptools<80")  # the official code imports pkg_resources
  if [ ${#missing[@]} -eq 0 ]; then echo "nothing to install"; return 0; fi
  if [ ! -d "$INPUTS/wheels" ]; then echo "no wheels folder for ${missing[*]}: $INPUTS/wheels"; return 75; fi
  "$PYTHON" -m pip install --no-index --find-links "$INPUTS/wheels" "${missing[@]}"
}

bench() {
  local rc=0
  for precision in $PRECISIONS; do
    "$PYTHON" -m runners.cli bench --config E --preset stackedmnist --width "$WIDTH" --batch "$BATCH_MNIST" --steps "$STEPS" \
      --warmup "$WARMUP" --device "$DEVICE" --precision "$precision" --threads 1 --json >> "$OUT/bench.jsonl" || rc=1
    "$PYTHON" -m runners.cli bench --config E --preset "$FFHQ" --width "$WIDTH" --batch "$BATCH_FFHQ" --steps "$STEPS" \
      --warmup "$WARMUP" --device "$DEVICE" --precision "$precision" --threads 1 --json >> "$OUT/bench.jsonl" || rc=1
  done
  cat "$OUT/bench.jsonl"
  return $rc
}

official() {
  if [ ! -d "$INPUTS/R3GAN" ]; then echo "no checkout of the official code at $INPUTS/R3GAN"; return 75; fi
  # shellcheck disable=SC2086
  "$PYTHON" results/reference/benchmarks/against_official.py --official "$INPUTS/R3GAN" $OFFICIAL_ARGS --json "$OUT/against_official.json"
}

table3() {
  if [ ! -d "$R3BENCH_DATA/MNIST" ]; then echo "no MNIST under $R3BENCH_DATA"; return 75; fi
  # shellcheck disable=SC2086
  "$PYTHON" -m runners.cli run table3 --preset gpu --executor debug --out "$OUT/runs" --force --no-progress $TABLE3_ARGS
}

step environment environment
cp "$OUT/environment.log" "$OUT/environment.json"
step install install
step host_sync "$PYTHON" results/reference/benchmarks/host_sync.py --device "$DEVICE" $HOST_SYNC_ARGS --json "$OUT/host_sync.json"
step bench bench
step official official
step table3 table3
echo "gpu_check: results in $OUT"
grep -q '"failed' "$STATUS" && exit 1
exit 0
