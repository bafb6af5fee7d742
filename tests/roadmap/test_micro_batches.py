"""Micro-batches (the official loop's batch_gpu rounds): one step in 4 micro-batches is one step on the whole batch (issue 22).

Both phases split their batch of 8 into 4 micro-batches of 2, accumulate gradients and take R1/R2
per micro-batch; losses, every statistic and every parameter gradient agree with the one-pass step
to 1e-5 relative. With a count of 1 the step is the one-pass code itself (bitwise, both operator paths).
"""

import pytest
import torch

from roadmap.config import micro_batches, resolve
from roadmap.errors import ConfigError
from roadmap.losses import LossSpec
from roadmap.networks.operators import PlainOperators
from roadmap.registry import create_model
from roadmap.step import Batch, Optimization, _accumulating, combine, split, training_iteration

RELATIVE = 1e-5
R1_R2 = LossSpec(loss="rpgan", penalties=("r1", "r2"), lazy_interval=1)
GAN_R1 = LossSpec(loss="gan", penalties=("r1",), lazy_interval=1)


def _iteration(row, model_args, loss, micro: int, step: int = 0, plain: bool = False, keep_zero=()):
    """(statistics as floats, {parameter: gradient}) of one iteration at batch 8 with `micro` micro-batches per phase."""
    torch.manual_seed(0)
    pair = create_model(row, **model_args).place("cpu", PlainOperators if plain else None)
    with torch.no_grad():  # non-zero residual branches so every path carries gradient
        for module in (pair.generator, pair.discriminator):
            for name, parameter in module.named_parameters():
                if not any(part in name for part in keep_zero):
                    parameter.add_(torch.randn(parameter.shape) * 0.02)
    # lr 0: the optimizer steps leave the weights, so the G step sees the same D on both sides.
    optimization = Optimization(torch.optim.Adam(pair.generator.parameters(), lr=0.0, betas=(0.0, 0.99)),
                                torch.optim.Adam(pair.discriminator.parameters(), lr=0.0, betas=(0.0, 0.99)),
                                torch.amp.GradScaler("cpu", enabled=False), torch.amp.GradScaler("cpu", enabled=False))
    source = torch.Generator().manual_seed(1)
    real = torch.rand(2, 8, 3, 16, 16, generator=source) * 2 - 1
    z = torch.randn(2, 8, pair.latent_dim, generator=source)
    labels = torch.tensor([0, 3, 3, 9, 1, 2, 7, 7]) if getattr(pair.discriminator, "num_classes", 0) else None
    stats = training_iteration(pair, optimization, loss, step, 1.0, Batch(real[0], labels, z[0]), Batch(real[1], labels, z[1]),
                               micro_batches_D=micro, micro_batches_G=micro)
    gradients = {f"{side}.{name}": p.grad.clone() for side, module in (("G", pair.generator), ("D", pair.discriminator))
                 for name, p in module.named_parameters() if p.grad is not None}
    return {k: float(v) for k, v in stats.items()}, gradients


def _assert_close(whole, micro, skip=()):
    stats, gradients = whole
    micro_stats, micro_gradients = micro
    assert set(stats) == set(micro_stats)
    for key, value in stats.items():
        assert micro_stats[key] == pytest.approx(value, rel=RELATIVE, abs=1e-7), key
    compared = [name for name in gradients if not any(part in name for part in skip)]
    assert set(gradients) == set(micro_gradients) and len(compared) > 10
    for name in compared:
        scale = gradients[name].abs().max().clamp_min(1e-12)
        assert (micro_gradients[name] - gradients[name]).abs().max() / scale < RELATIVE, name


E = dict(preset="stackedmnist", width=0.03125, resolution=16)
SMALL_RESNET = dict(width=8, blocks=1, resolution=16)


# E takes the folded D step (R1 and R2 folded; R1 only leaves the fake side's measuring pass); the
# conditional E the plain D step with a projection head; the small ResNet is Table 1's test bed.
@pytest.mark.parametrize("row, model_args, loss", [
    ("E", E, R1_R2), ("E", E, GAN_R1), ("E", dict(E, preset="cifar10"), R1_R2),
    ("small_resnet", SMALL_RESNET, R1_R2), ("small_resnet", SMALL_RESNET, GAN_R1),
])
def test_four_micro_batches_equal_the_whole_batch(row, model_args, loss):
    whole = _iteration(row, model_args, loss, micro=1)
    micro = _iteration(row, model_args, loss, micro=4)
    _assert_close(whole, micro)
    assert whole[0]["r1"] > 0 and whole[0]["grad_norm_real_max"] > whole[0]["grad_norm_real"]  # the statistics carry signal


def test_four_micro_batches_equal_the_whole_batch_with_plain_operators():
    _assert_close(_iteration("E", E, R1_R2, micro=1, plain=True), _iteration("E", E, R1_R2, micro=4, plain=True))


def test_config_a_up_to_its_per_call_state():
    """Config A agrees up to what it draws or keeps per call, as in the official loop's batch_gpu rounds:
    - style mixing draws per call whether and where to mix: mixing_probability 0 here;
    - per-layer noise is drawn per call: noise strengths stay 0 (so images do not depend on the draws)
      and their gradients (sums over the drawn noise) are not compared;
    - minibatch stddev groups lie inside a call: group 1 here (a per-sample statistic);
    - the path length penalty updates its running mean per call: step 1 is off its interval of 4.
    """
    args = dict(preset="stackedmnist", width=0.03125, resolution=16, mixing_probability=0.0, mbstd_group=1)
    whole = _iteration("A", args, GAN_R1, micro=1, step=1, keep_zero=("noise_strength",))
    micro = _iteration("A", args, GAN_R1, micro=4, step=1, keep_zero=("noise_strength",))
    _assert_close(whole, micro, skip=("noise_strength",))


def test_config_a_path_length_penalty_runs_per_micro_batch():
    """On its interval, the path length penalty runs once per micro-batch on half of it (batch_shrink 2),
    as the official Greg phase: its running mean moves once per call, so the penalty differs from one pass
    by that state alone; the main G loss still agrees."""
    args = dict(preset="stackedmnist", width=0.03125, resolution=16, mixing_probability=0.0, mbstd_group=1)
    whole, _ = _iteration("A", args, GAN_R1, micro=1, step=0, keep_zero=("noise_strength",))
    micro, _ = _iteration("A", args, GAN_R1, micro=4, step=0, keep_zero=("noise_strength",))
    assert micro["loss_G"] == pytest.approx(whole["loss_G"], rel=RELATIVE)
    assert micro["generator_penalty"] != whole["generator_penalty"] and micro["generator_penalty"] > 0


@pytest.mark.parametrize("plain", [False, True])
def test_one_micro_batch_is_the_one_pass_code_bitwise(plain):
    """Count 1 takes no other path: the batch is not split, the loss not rescaled (bitwise equal runs)."""
    batch = Batch(torch.zeros(8, 3), None, torch.zeros(8, 2))
    assert split(batch, 1) == [batch] and split(batch, 1)[0] is batch and len(split(batch, 4)) == 4
    scale = torch.amp.GradScaler("cpu", enabled=False).scale
    assert _accumulating(scale, 1) is scale and float(_accumulating(scale, 4)(torch.tensor(8.0))) == 2.0
    first = _iteration("E", E, R1_R2, micro=1, plain=plain)
    again = _iteration("E", E, R1_R2, micro=1, plain=plain)
    assert first[0] == again[0]
    assert all(torch.equal(first[1][name], again[1][name]) for name in first[1])
    micro = _iteration("E", E, R1_R2, micro=4, plain=plain)
    assert any(not torch.equal(first[1][name], micro[1][name]) for name in first[1])  # 4 passes do reorder sums


def test_statistics_combine_by_mean_and_per_sample_max():
    parts = [dict(grad_norm_real=torch.tensor(1.0), grad_norm_fake=torch.tensor(4.0), grad_norm_real_max=torch.tensor(3.0),
                  grad_ratio_max=torch.tensor(4.0), loss_G=torch.tensor(1.0), loss_G_max=torch.tensor(1.0)),
             dict(grad_norm_real=torch.tensor(3.0), grad_norm_fake=torch.tensor(2.0), grad_norm_real_max=torch.tensor(5.0),
                  grad_ratio_max=torch.tensor(2.0 / 3.0), loss_G=torch.tensor(3.0), loss_G_max=torch.tensor(3.0))]
    combined = {k: float(v) for k, v in combine(parts).items()}
    assert combined == dict(grad_norm_real=2.0, grad_norm_fake=3.0, grad_norm_real_max=5.0, grad_ratio_max=1.5, loss_G=2.0, loss_G_max=2.0)


def test_micro_batch_counts_from_the_run_configuration():
    config = resolve(dict(batch=512, batch_gpu=16, batch_gpu_G=32))
    assert micro_batches(config, world_size=8) == (4, 2)  # 64 per rank
    assert micro_batches(resolve(dict(batch=64)), 2) == (1, 1)
    assert micro_batches(resolve(dict(batch=64, batch_gpu=128)), 1) == (1, 1)  # larger than the share: one pass
    with pytest.raises(ConfigError, match="batch_gpu: 64 images per rank"):
        micro_batches(resolve(dict(batch=64, batch_gpu=24)), 1)
    with pytest.raises(ConfigError, match="batch_gpu"):
        resolve(dict(batch_gpu=0))
