"""The per-rank peak memory estimate (roadmap/memory.py) against the measured peak of a tiny CPU step (issue 22).

Measured: in a fresh process (so the peak is this step's), the growth of the resident set from just
before one training iteration to the process's peak (VmHWM), fp32, one thread, glibc's mmap threshold
fixed at 64 KiB so freed tensors go back to the system at once. On the plain operators (the graph the
estimate counts) the estimate must lie within a factor of 1.5 of it, either way; on the fast operators
(what CPU and CUDA runs use) it must bound it from above, by at most 2x.
"""
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from roadmap.bench import parameter_counts
from roadmap.memory import TRANSIENT, estimate

FACTOR = 1.5
FAST_FACTOR = 2.0  # the estimate over the fast operators' measured peak: at least 1 (an upper bound), at most this


def _measure(model: str, model_args: dict, batch: int, operators: str = "PlainOperators") -> int:
    # A clean environment: nothing a test before this one left behind reaches the measured process.
    environment = dict(PATH=os.environ.get("PATH", ""), HOME=os.environ.get("HOME", "/tmp"), MALLOC_MMAP_THRESHOLD_="65536",
                       PYTHONPATH=str(Path(__file__).resolve().parents[2]), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, __file__, model, json.dumps(model_args), str(batch), operators], capture_output=True, text=True,
                         env=environment, timeout=600, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["growth"]


CASES = [("small_resnet", dict(width=32, blocks=2, resolution=32), 32), ("E", dict(preset="stackedmnist", width=0.125), 32)]


@pytest.mark.parametrize("model, model_args, batch", CASES)
def test_estimate_within_a_factor_of_the_measured_cpu_peak(model, model_args, batch):
    measured = _measure(model, model_args, batch)
    predicted = estimate(model, model_args, batch).peak
    assert measured > 100 * 2**20  # the step's own memory dominates the measurement's noise
    assert 1 / FACTOR <= predicted / measured <= FACTOR, (predicted, measured)


@pytest.mark.parametrize("model, model_args, batch", CASES)
def test_estimate_bounds_the_fast_operators_peak_from_above(model, model_args, batch):
    """The run's own operators (FastOperators, CPU and CUDA) save less than the plain graph the estimate counts
    (measured 2026-12-02: 112 vs 151 MB for the small ResNet, 761 vs 1079 MB for E at width 1/8): the estimate is an
    upper bound of their peak, by 1.59x and 1.70x here; a micro-batch chosen from it errs toward fitting."""
    measured = _measure(model, model_args, batch, "FastOperators")
    predicted = estimate(model, model_args, batch).peak
    assert 1.0 <= predicted / measured <= FAST_FACTOR, (predicted, measured)


def test_estimate_grows_with_the_micro_batch_and_halves_bf16_stages():
    args = dict(preset="stackedmnist", width=0.125)
    small, large = estimate("E", args, 8), estimate("E", args, 16)
    assert large.peak - small.peak == pytest.approx(8 * max(small.per_sample_D, small.per_sample_G) * TRANSIENT, rel=1e-6)
    bf16 = estimate("E", dict(args, precision="bf16"), 8)
    assert bf16.static == small.static  # parameters stay fp32
    assert 0.4 * small.per_sample_D < bf16.per_sample_D < 0.8 * small.per_sample_D  # 3 of 4 stages in 2 bytes


def test_paper_scale_estimates():
    """Full-width Config E per GPU at the paper's per-GPU batch: FFHQ-256's 32 images need micro-batches on an 80 GB GPU."""
    ffhq = estimate("E", dict(preset="ffhq256", width=1.0, precision="bf16"), 32)
    counts = parameter_counts("E", "ffhq256")
    assert counts["G"] == pytest.approx(23.06e6, rel=0.01)  # Table 9
    assert ffhq.static == 4 * (5 * counts["G"] + 4 * counts["D"])  # fp32 weights, gradients, 2 Adam moments; G's EMA
    assert ffhq.peak > 60 * 2**30 and estimate("E", dict(preset="ffhq256", width=1.0, precision="bf16"), 8).peak < 30 * 2**30


def _child(model: str, model_args: str, batch: str, operators: str) -> None:
    from roadmap.networks import operators as backends
    from roadmap.registry import create_model
    from roadmap.step import Batch, Optimization, training_iteration

    def resident() -> int:
        with open("/proc/self/statm") as stream:
            return int(stream.read().split()[1]) * resource.getpagesize()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    pair = create_model(model, **json.loads(model_args)).place("cpu", getattr(backends, operators))
    optimization = Optimization(torch.optim.Adam(pair.generator.parameters()), torch.optim.Adam(pair.discriminator.parameters()),
                                torch.amp.GradScaler("cpu", enabled=False), torch.amp.GradScaler("cpu", enabled=False))
    with torch.no_grad():
        shape = pair.generator(torch.zeros(1, pair.latent_dim)).shape[1:]
    real, z = torch.rand(int(batch), *shape) * 2 - 1, torch.randn(int(batch), pair.latent_dim)
    before = resident()
    training_iteration(pair, optimization, pair.loss_spec, 0, 1.0, Batch(real, None, z), Batch(real, None, z))
    print(json.dumps(dict(growth=_peak_resident() - before)))


def _peak_resident() -> int:
    """This process's peak resident set (VmHWM). Not ru_maxrss: Linux carries the spawning process's
    peak into it across exec, so a child of a large pytest process would report the parent's."""
    with open("/proc/self/status") as stream:
        return next(int(line.split()[1]) * 1024 for line in stream if line.startswith("VmHWM:"))


if __name__ == "__main__":
    _child(*sys.argv[1:])
