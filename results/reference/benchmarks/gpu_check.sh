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
#   5 operators     one iteration of Config E (Stacked MNIST width, bf16 and fp32) on the fast and on the plain
#                   operators (roadmap/networks/operators.py) from the same weights and batches: the largest
#                   relative difference of a statistic, of a gradient and of a gradient's norm, and img/s of
#                   each (after warm-up) -> operators.json
#   6 official      results/reference/benchmarks/against_official.py (img/s, peak memory, FLOPs, MFU) when R3GAN/ is there
#   7 table3        a short `r3bench run table3 --preset gpu` (modes/KL at the end)
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
  WIDTH=1.0; BATCH_MNIST=64; BATCH_FFHQ=32; STEPS=10; WARMUP=3; PRECISIONS="bf16 fp32"; FFHQ=ffhq256; RESOLUTION=32
  OFFICIAL_ARGS="--preset stackedmnist --width 1.0 --batch 64 --pairs 6 --device cuda --precision bf16 --peak-tflops 989"
  TABLE3_ARGS="duration_kimg=8 tick_kimg=4 score_ticks=0 eval_samples=10000 seeds=[0]"
  HOST_SYNC_ARGS=""
else
  WIDTH=0.03125; BATCH_MNIST=4; BATCH_FFHQ=2; STEPS=1; WARMUP=1; PRECISIONS="fp32"; FFHQ=ffhq64; RESOLUTION=16
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

operators() {
  # shellcheck disable=SC2086
  "$PYTHON" - "$DEVICE" "$WIDTH" "$RESOLUTION" "$BATCH_MNIST" "$STEPS" "$WARMUP" "$OUT/operators.json" $PRECISIONS <<'EOF'
"""Config E, one iteration on the fast and on the plain operators from the same weights and batches: agreement and img/s."""
import json, platform, sys, time
import torch
from roadmap.networks.operators import FastOperators, PlainOperators
from roadmap.registry import create_model
from roadmap.step import Batch, Optimization, training_iteration

device, width, out = sys.argv[1], float(sys.argv[2]), sys.argv[7]
resolution, batch, steps, warmup = map(int, sys.argv[3:7])
torch.backends.cudnn.benchmark = device == "cuda"  # the trainer's setting on CUDA


def setup(precision, operators):
    """The pair on `operators`, an lr-0 optimization (the weights stay: every iteration is the first) and two batches."""
    torch.manual_seed(0)
    pair = create_model("E", preset="stackedmnist", width=width, resolution=resolution, precision=precision)
    with torch.no_grad():  # non-zero last convs in the residual blocks, so every path carries gradient (tests/roadmap/test_step.py)
        for parameter in list(pair.generator.parameters()) + list(pair.discriminator.parameters()):
            parameter.add_(torch.randn(parameter.shape) * 0.02)
    pair.place(device, operators)
    optimization = Optimization(*(torch.optim.Adam(m.parameters(), lr=0.0, betas=(0.0, 0.99)) for m in (pair.generator, pair.discriminator)),
                                torch.amp.GradScaler(device, enabled=False), torch.amp.GradScaler(device, enabled=False))
    rng = torch.Generator().manual_seed(1)
    batches = [Batch((torch.rand(batch, 3, resolution, resolution, generator=rng) * 2 - 1).to(device), None,
                     torch.randn(batch, pair.latent_dim, generator=rng).to(device)) for _ in range(2)]
    return pair, optimization, batches


def measure(precision, operators):
    """(statistics, {parameter: gradient}) of the first iteration, and img/s over `steps` more after `warmup`."""
    pair, optimization, batches = setup(precision, operators)
    iterate = lambda: training_iteration(pair, optimization, pair.loss_spec, 0, 1.0, *batches)  # noqa: E731
    stats = {key: float(value) for key, value in iterate().items()}
    gradients = {f"{side}.{name}": p.grad.detach().float().clone() for side, m in (("G", pair.generator), ("D", pair.discriminator))
                 for name, p in m.named_parameters() if p.grad is not None}
    for _ in range(warmup):
        iterate()
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        iterate()
    synchronize()
    return stats, gradients, 2 * batch * steps / (time.perf_counter() - start)  # a D and a G batch of real images per iteration


def relative(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


rows = []
for precision in sys.argv[8:]:
    (plain_stats, plain_grads, plain_speed), (fast_stats, fast_grads, fast_speed) = (measure(precision, o) for o in (PlainOperators, FastOperators))
    norms = {name: float(g.norm()) for name, g in plain_grads.items()}
    nonzero = [name for name in plain_grads if norms[name] > 0]  # RpGAN's last bias cancels exactly: no scale to compare to
    rows.append(dict(
        precision=precision, width=width, resolution=resolution, batch=batch,
        max_relative_statistic=max(relative(fast_stats[k], v) for k, v in plain_stats.items()),
        worst_statistic=max(plain_stats, key=lambda k: relative(fast_stats[k], plain_stats[k])),
        max_relative_gradient=max(float((fast_grads[n] - plain_grads[n]).norm()) / norms[n] for n in nonzero),
        max_relative_gradient_norm=max(relative(float(fast_grads[n].norm()), norms[n]) for n in nonzero),
        plain_img_per_s=round(plain_speed, 2), fast_img_per_s=round(fast_speed, 2), speedup=round(fast_speed / plain_speed, 3)))
    print(json.dumps(rows[-1]))
result = dict(device=device, device_name=torch.cuda.get_device_name() if device == "cuda" else platform.machine(),
              torch=torch.__version__, steps=steps, warmup=warmup, rows=rows)
with open(out, "w") as stream:
    json.dump(result, stream, indent=1)
EOF
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
step operators operators
step official official
step table3 table3
echo "gpu_check: results in $OUT"
grep -q '"failed' "$STATUS" && exit 1
exit 0
