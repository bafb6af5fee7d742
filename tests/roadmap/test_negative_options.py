"""Appendix E ablation options of the modern ResNet (activation, GroupNorm, resolution, precision events) and the lazy loop."""
import math

import pytest
import torch
from torch import nn

from roadmap import trainer
from roadmap import step as step_module
from roadmap.config import resolve
from roadmap.errors import ConfigError
from roadmap.networks.layers import GroupNorm, smu
from roadmap.networks.precision import PrecisionMonitor, first_nonfinite
from roadmap.networks.resnet import ResidualBlock
from roadmap.registry import create_model

SMALL = dict(preset="stackedmnist", width=0.03125, resolution=16, blocks=1)


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_loop_passes_weight_k_on_exactly_every_kth_step(tmp_path, monkeypatch):
    weights = []
    step = trainer.discriminator_step

    def spy(pair, real, labels, z, objective, penalties, gamma, regularization_weight, *scale):
        weights.append(regularization_weight)
        return step(pair, real, labels, z, objective, penalties, gamma, regularization_weight, *scale)

    monkeypatch.setattr(step_module, "discriminator_step", spy)
    # the summary's fingerprint runs two iterations of its own (roadmap/fingerprint.py): not the loop's steps
    monkeypatch.setattr(trainer, "compute_fingerprint", lambda config: "not computed in this test")
    config = resolve(dict(model="toy_mlp", model_args=dict(hidden=8, depth=1, latent_dim=2), dataset="ring8", batch=8,
                          duration_kimg=0.136, tick_kimg=0.136, lazy_interval=8, loss="rpgan", penalties=["r1", "r2"]))
    trainer.train(config, tmp_path)
    assert weights == [8 if i % 8 == 0 else 0 for i in range(17)]


def test_defaults_are_the_paper_network():
    torch.manual_seed(0)
    plain = create_model("E", preset="stackedmnist", width=0.0625)
    torch.manual_seed(0)
    explicit = create_model("E", preset="stackedmnist", width=0.0625, activation="lrelu", normalization="none",
                            resolution=32, low_precision_stages=3, precision_events=False)
    for a, b in ((plain.generator, explicit.generator), (plain.discriminator, explicit.discriminator)):
        assert list(a.state_dict()) == list(b.state_dict())
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert plain.step_statistics is None
    assert [s.dtype for s in create_model("E", preset="stackedmnist", width=0.0625, precision="bf16").generator.stages] == \
        [torch.float32] + [torch.bfloat16] * 3


def test_smu_values():
    x = torch.tensor([0.0, 1.0, -1.0, 50.0, -50.0])
    expected = [0.0, (1.25 + 0.75 * math.erf(0.75)) / 2, (-1.25 + 0.75 * math.erf(0.75)) / 2, 50.0, -12.5]
    assert torch.allclose(smu(x), torch.tensor(expected), atol=1e-5)


@pytest.mark.parametrize("activation, function", [("gelu", torch.nn.functional.gelu), ("silu", torch.nn.functional.silu), ("smu", smu)])
def test_activation_option_replaces_both_block_activations(activation, function):
    torch.manual_seed(0)
    base = create_model("E", **SMALL)
    torch.manual_seed(0)
    pair = create_model("E", activation=activation, **SMALL)
    assert count(pair.generator) == count(base.generator) and count(pair.discriminator) == count(base.discriminator)
    block = next(m for m in pair.generator.modules() if isinstance(m, ResidualBlock))
    x = torch.randn(5, block.act1.bias.numel(), 2, 2)
    assert torch.allclose(block.act1(x), function(x)) and torch.allclose(block.act2(x), function(x))
    with torch.no_grad():  # the zero-initialized last conv hides the activation at init: open it
        for net in (base.generator, pair.generator):
            for b in (m for m in net.modules() if isinstance(m, ResidualBlock)):
                b.conv3.weight.fill_(0.05)
    z = torch.randn(2, 64)
    assert not torch.allclose(base.generator(z), pair.generator(z))


def test_groupnorm_option_adds_one_norm_before_each_activation():
    base = create_model("E", **SMALL)
    pair = create_model("E", normalization="group", **SMALL)
    blocks = [m for net in (pair.generator, pair.discriminator) for m in net.modules() if isinstance(m, ResidualBlock)]
    hidden = [b.conv1.weight.shape[0] for b in blocks]
    extra = sum(2 * 2 * h for h in hidden)  # two GroupNorms per block, weight + bias each
    assert count(pair.generator) + count(pair.discriminator) == count(base.generator) + count(base.discriminator) + extra
    norm = blocks[0].norm1
    assert isinstance(norm, GroupNorm) and norm.num_groups == max(g for g in range(1, 33) if hidden[0] % g == 0)
    y = norm(torch.randn(4, hidden[0], 4, 4) * 7 + 3).view(4, norm.num_groups, -1)
    assert torch.allclose(y.mean(-1), torch.zeros(4, norm.num_groups), atol=1e-5)
    assert all(isinstance(b.norm1, nn.Identity) for b in base.generator.modules() if isinstance(b, ResidualBlock))


def test_resolution_option_keeps_the_lowest_stages_and_fp32_4x4():
    pair = create_model("E", precision="fp16", **SMALL)
    assert [s.name for s in pair.generator.stages] == ["G.s4", "G.s8", "G.s16"]
    assert [s.dtype for s in pair.generator.stages] == [torch.float32, torch.float16, torch.float16]
    assert [s.dtype for s in pair.discriminator.stages] == [torch.float16, torch.float16, torch.float32]
    images = pair.generator(torch.randn(2, 64))
    assert images.shape == (2, 3, 16, 16) and images.dtype == torch.float32


def test_emulated_cast_rounds_activations_and_gradients_of_low_precision_stages_only():
    torch.manual_seed(0)
    pair = create_model("E", precision="fp16", **SMALL)
    seen = {}
    for stage in pair.discriminator.stages:
        stage.register_forward_hook(lambda m, i, o: seen.__setitem__(m.name, o))
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    pair.discriminator(x).sum().backward()
    for name, output in seen.items():
        low = name != "D.s4"
        assert torch.equal(output, output.half().float()) == low, name
    # The gradient reaching the input went backward through the 16 px stage's entry cast.
    assert torch.equal(x.grad, x.grad.half().float())


def test_monitor_counts_overflow_and_names_the_first_nonfinite_tensor():
    torch.manual_seed(0)
    assert create_model("E", precision="fp16", **SMALL).step_statistics is None  # off unless asked (host reads)
    pair = create_model("E", precision="fp16", precision_events=True, **SMALL)
    keys = set(pair.step_statistics(0))
    assert "prec.G.s16.act.overflow" in keys and "prec.D.logits.nonfinite" in keys and "prec.G.s4.in.overflow" not in keys
    with torch.no_grad():  # blow up the 4x4 basis: what enters G's fp16 8 px stage exceeds 65504
        pair.generator.stages[0].layers[0].basis.mul_(1e6)
    images = pair.generator(torch.randn(4, 64))
    stats = pair.step_statistics(1)
    assert stats["prec.G.s8.in.overflow"] > 0  # the fp32 4x4 output overflows on entering the fp16 stage
    assert stats["prec.G.s4.act.overflow"] == 0  # fp32 stages report no overflow of their own
    assert not torch.isfinite(images).all()
    assert first_nonfinite(stats) == ("G.s8.act", 1)  # step 1: the key listing above was step 0
    assert pair.step_statistics(2)["prec.G.s8.in.overflow"] == 0  # reset every step


def test_monitor_underflow_threshold():
    monitor = PrecisionMonitor()
    monitor.register("t")
    monitor.count("t", torch.tensor([2.0 ** -26, 2.0 ** -24, 0.0, 1e5, float("nan")]), torch.float16)
    stats = monitor.step_statistics(0)
    assert (stats["prec.t.underflow"], stats["prec.t.overflow"], stats["prec.t.nonfinite"]) == (1.0, 1.0, 1.0)
    assert stats["prec.first_nonfinite.t"] == 0.0


@pytest.mark.parametrize("kwargs, field", [
    (dict(activation="relu"), "activation"), (dict(normalization="batch"), "normalization"),
    (dict(resolution=12), "resolution"), (dict(resolution=64), "resolution"),
    (dict(low_precision_stages=9), "low_precision_stages"), (dict(precision_events="yes"), "precision_events"),
])
def test_bad_options_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        create_model("E", preset="stackedmnist", width=0.03125, **kwargs)


def test_first_event_steps_combine_by_max_over_a_tick_and_follow_the_global_step():
    from roadmap.networks.precision import PrecisionMonitor
    from roadmap.trainer import _combined_by_max

    monitor = PrecisionMonitor()
    monitor.register("G.s16.act")
    assert monitor.step_statistics(41)["prec.first_nonfinite.G.s16.act"] == -1.0
    monitor.count("G.s16.act", torch.tensor([float("nan"), 1.0]))
    assert monitor.step_statistics(42)["prec.first_nonfinite.G.s16.act"] == 42.0  # the trainer's step, not a private counter
    assert monitor.step_statistics(43)["prec.first_nonfinite.G.s16.act"] == 42.0
    assert _combined_by_max("prec.first_nonfinite.G.s16.act") and not _combined_by_max("prec.G.s16.act.nonfinite")


@pytest.mark.parametrize("value", [0, "16", True])
def test_group_size_must_be_a_positive_integer(value):
    with pytest.raises(ConfigError, match="group_size: must be an integer >= 1"):
        create_model("E", preset="stackedmnist", width=0.03125, group_size=value)
