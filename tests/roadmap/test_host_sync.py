"""No host synchronization inside a training step (issue 22): host reads counted during training_iteration on the CPU.

A read of a tensor's value on the host stalls a GPU step; on the CPU the same calls sit at the same
places, so the count here is the count a GPU step would make. Augmentation is on (p = 0.5) so its
draws and constants are inside the counted step.
"""
import functools

import pytest
import torch

from roadmap import augment as augment_module
from roadmap.host_sync import HostRead, count_host_reads
from roadmap.registry import create_model
from roadmap.step import Batch, Optimization, training_iteration

E = dict(preset="stackedmnist", width=0.03125, resolution=16, blocks=1)

# Config A's reads, each with its reason: StyleGAN2's style mixing decides on the host, once per
# generator call in training mode (the D step's fake batch and the G step's), whether to mix
# (`torch.rand([]) < p`) and at which layer (`int(torch.randint(...))`), because the cutoff is a
# Python slice. Making it a device-side select would change A's random draws, and with them every
# committed Config A number; the official StyleGAN2-ADA code reads the cutoff as a slice too.
MIXING_DECISION = HostRead("__bool__", "stylegan2.py:209 forward")  # every training-mode generator call
MIXING_CUTOFF = HostRead("__int__", "stylegan2.py:211 forward")  # only the calls that mix (probability 0.9)


def _reads(row, model_args, loss=None, step=0):
    """Host reads of the second training_iteration (the first warms the optimizers' state and the caches)."""
    torch.manual_seed(0)
    pair = create_model(row, **model_args)
    optimization = Optimization(torch.optim.Adam(pair.generator.parameters()), torch.optim.Adam(pair.discriminator.parameters()),
                                torch.amp.GradScaler("cpu", enabled=False), torch.amp.GradScaler("cpu", enabled=False))
    loss = loss or pair.loss_spec
    rng = torch.Generator().manual_seed(3)
    augment = functools.partial(augment_module.augment, p=0.5, generator=rng)
    labels = torch.tensor([0, 3, 3, 9]) if getattr(pair.discriminator, "num_classes", 0) else None

    def batch():
        return Batch(torch.rand(4, 3, 16, 16) * 2 - 1, labels, torch.randn(4, pair.latent_dim))

    training_iteration(pair, optimization, loss, step, 1.0, batch(), batch(), augment)
    with count_host_reads() as reads:
        training_iteration(pair, optimization, loss, step, 1.0, batch(), batch(), augment, micro_batches_D=2, micro_batches_G=2)
    return reads


@pytest.mark.parametrize("row, model_args", [
    ("E", E), ("E", dict(E, precision="bf16")), ("E", dict(E, preset="cifar10")),
    ("small_resnet", dict(width=8, blocks=1, resolution=16)),
])
def test_no_host_reads_in_a_step(row, model_args):
    assert _reads(row, model_args) == []


def test_config_a_reads_only_its_allow_list():
    reads = _reads("A", dict(preset="stackedmnist", width=0.03125, resolution=16), step=0)  # path length penalty due too
    # 2 micro-batches per phase: 4 generator calls (2 fake batches for D, 2 for G); the path length
    # penalty calls mapping and synthesis directly and draws no mixing
    assert set(reads) <= {MIXING_DECISION, MIXING_CUTOFF}
    assert reads.count(MIXING_DECISION) == 4 and 1 <= reads.count(MIXING_CUTOFF) <= 4


def test_the_counter_sees_the_precision_monitor_and_ignores_the_optimizers_step_counters():
    """The monitor (off by default) reads counts on the host: asked for, it makes the step stall."""
    reads = _reads("E", dict(E, precision="bf16", precision_events=True))
    assert len(reads) > 50 and all(read.where.startswith("precision.py") for read in reads)
    parameter = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.Adam([parameter])
    parameter.grad = torch.ones(2)
    with count_host_reads() as reads:
        optimizer.step()  # reads its CPU `step` tensor: not counted
        torch.ones(1).item()
        float(torch.ones(1))
    assert [read.kind for read in reads] == ["item", "__float__"]
    assert reads[0].where.startswith("test_host_sync.py:")


def test_augmentation_makes_its_constants_once(monkeypatch):
    """After the first call, an augmentation builds no tensor from Python data (each would be a blocking
    host-to-device copy on a GPU): every constant comes from the per-device cache."""
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    generator = torch.Generator().manual_seed(0)
    first = augment_module.augment(images, 0.5, generator=generator)
    made = []
    for name in ("tensor", "as_tensor"):
        original = getattr(torch, name)
        monkeypatch.setattr(torch, name, lambda *args, _original=original, **kwargs: made.append(args) or _original(*args, **kwargs))
    generator.manual_seed(0)
    again = augment_module.augment(images, 0.5, generator=generator)
    assert made == []
    assert torch.equal(first, again)  # the cached constants are the same numbers
