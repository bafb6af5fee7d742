"""The optimized training iteration computes what the plain one does, up to floating-point reordering (issue "Performance").

Plain: the pair placed on operators.PlainOperators (N*C single-channel resampling, as the official reference ops;
F.conv2d and autograd's own double backward; contiguous tensors), i.e. the step as it was before
the CPU speed-ups. Optimized: the fast operators, the CPU's and CUDA's default (networks/cpu_ops.py:
channels_last, the cheap double backward, and the adversarial gradient folded into R1/R2's double
backward where the discriminator supports it). One D step (with R1/R2) and one G step from the same weights and
batches; the losses, penalties and every parameter's gradient agree to 1e-5 relative. In bf16, with the
low-precision stages computed in bf16 as on CUDA (issue 22), within bf16 tolerance (BF16_RELATIVE).
"""
import pytest
import torch

from roadmap.configs import ROWS
from roadmap.losses import LossSpec
from roadmap.networks import resnet, stylegan2
from roadmap.networks.layers import Downsample, Upsample
from roadmap.networks.operators import FastOperators, OperatorLayer, PlainOperators, set_operators
from roadmap.registry import create_model
from roadmap.step import Batch, Optimization, training_iteration

RELATIVE = 1e-5


R1_R2 = LossSpec(loss="rpgan", penalties=("r1", "r2"), lazy_interval=1)


def _iteration(row: str, plain: bool, loss: LossSpec = R1_R2, step: int = 0, preset: str = "stackedmnist", model_args=None):
    """(statistics, {parameter name: gradient}) of one iteration (D step number `step`) of `row` at a tiny width, 16 px, batch 4."""
    torch.manual_seed(0)
    pair = create_model(row, **(model_args or dict(preset=preset, width=0.03125, resolution=16)))
    pair.place("cpu", PlainOperators if plain else FastOperators)
    # Make the zero-initialized last convs of the residual blocks non-zero, so every path carries gradient.
    with torch.no_grad():
        for module in (pair.generator, pair.discriminator):
            for parameter in module.parameters():
                parameter.add_(torch.randn(parameter.shape) * 0.02)
    # lr 0: the optimizer steps leave the weights as they are, so the G step sees the same D on both sides.
    optimization = Optimization(torch.optim.Adam(pair.generator.parameters(), lr=0.0, betas=(0.0, 0.99)),
                                torch.optim.Adam(pair.discriminator.parameters(), lr=0.0, betas=(0.0, 0.99)),
                                torch.amp.GradScaler("cpu", enabled=False), torch.amp.GradScaler("cpu", enabled=False))
    generator = torch.Generator().manual_seed(1)
    real = (torch.rand(2, 4, 3, 16, 16, generator=generator) * 2 - 1)
    z = torch.randn(2, 4, pair.latent_dim, generator=generator)
    labels = torch.tensor([0, 3, 3, 9]) if getattr(pair.discriminator, "num_classes", 0) else None
    stats = training_iteration(pair, optimization, loss, step, 1.0, Batch(real[0], labels, z[0]), Batch(real[1], labels, z[1]))
    gradients = {f"{side}.{name}": p.grad.clone() for side, module in (("G", pair.generator), ("D", pair.discriminator))
                 for name, p in module.named_parameters() if p.grad is not None}
    return {k: float(v) for k, v in stats.items()}, gradients


@pytest.mark.parametrize("row", ROWS)
def test_optimized_step_equals_the_plain_step(row):
    _assert_same_iteration(row)


# The folding branches on E: R1 only with the fake side unfolded (GAN + R1), R2 only, a lazy step with
# no penalty (nothing folded), a penalty step of lazy regularization (weight 8), and a conditional
# (projection) D, which does not support folding.
@pytest.mark.parametrize("loss, step, preset", [
    (LossSpec(loss="gan", penalties=("r1",), lazy_interval=1), 0, "stackedmnist"),
    (LossSpec(loss="rpgan", penalties=("r2",), lazy_interval=1), 0, "stackedmnist"),
    (LossSpec(loss="rpgan", penalties=("r1", "r2"), lazy_interval=8), 3, "stackedmnist"),
    (LossSpec(loss="rpgan", penalties=("r1", "r2"), lazy_interval=8), 8, "stackedmnist"),
    (R1_R2, 0, "cifar10"),
])
def test_optimized_step_equals_the_plain_step_for_every_folding_branch(loss, step, preset):
    _assert_same_iteration("E", loss=loss, step=step, preset=preset)


# The Appendix E variants of E take the plain D step but run the fast operators inside (GroupNorm, GELU,
# emulated bf16 stages).
@pytest.mark.parametrize("options", [dict(normalization="group"), dict(activation="gelu"), dict(precision="bf16")])
def test_optimized_step_equals_the_plain_step_for_the_appendix_e_variants(options):
    _assert_same_iteration("E", model_args=dict(preset="stackedmnist", width=0.03125, resolution=16, **options))


# Table 1's test bed (and the stability map's): the small ResNet, folded on R1 and R2, then on R1 only.
@pytest.mark.parametrize("loss", [R1_R2, LossSpec(loss="gan", penalties=("r1",), lazy_interval=1)])
def test_optimized_step_equals_the_plain_step_for_the_small_resnet(loss):
    _assert_same_iteration("small_resnet", loss=loss, model_args=dict(width=8, blocks=1, resolution=16))


def _assert_same_iteration(row, **options):
    plain_stats, plain_grads = _iteration(row, plain=True, **options)
    stats, grads = _iteration(row, plain=False, **options)
    assert stats.keys() == plain_stats.keys()
    for key in plain_stats:
        assert stats[key] == pytest.approx(plain_stats[key], rel=RELATIVE, abs=1e-9), key
    assert grads.keys() == plain_grads.keys() and len(grads) > 10
    for name, reference in plain_grads.items():
        scale = reference.norm().item()
        if scale == 0:  # an exact cancellation (RpGAN's last bias: sum(c_real) + sum(c_fake) = 0) up to fp32 rounding
            assert grads[name].norm().item() < 1e-6, name
            continue
        assert (grads[name] - reference).norm().item() <= RELATIVE * scale, name


# Both operator sets compute every layer of a bf16 stage in bf16 (fp32 accumulation, then rounding), in different
# orders (channels_last and contiguous kernels; convolution_backward and autograd's double-backward formulas), so a
# rounded layer output may differ by one bf16 ulp, and a gradient's relative error grows with the roundings on its
# path (forward, input gradient, double backward, times the depth). 4 bf16 epsilons (2^-5, about 3.1e-2): measured
# here at most 4.6e-3 (row D) and mostly under 1e-5, while computing the stages in fp32 instead (the CPU's
# emulation) moves some gradient of every row by at least 0.11, so the bound tells bf16 arithmetic from fp32.
BF16_RELATIVE = 4 * torch.finfo(torch.bfloat16).eps
BF16 = dict(preset="stackedmnist", width=0.03125, resolution=16, precision="bf16")


def _compute_stages_in_their_format(monkeypatch):
    """Low-precision stages computed in their format on the CPU, as layers.enter_precision does on CUDA (the CPU's
    default emulates the format in fp32 arithmetic): real bf16 convolutions, quick at this size."""

    def enter_precision(x, dtype):
        return x.float() if dtype == torch.float32 else x.to(dtype)

    for module in (resnet, stylegan2):
        monkeypatch.setattr(module, "enter_precision", enter_precision)


def _worst_relative_difference(iteration, reference) -> float:
    """The largest relative difference of a statistic or a parameter's gradient (in norm) between two iterations."""
    (stats, grads), (reference_stats, reference_grads) = iteration, reference
    assert stats.keys() == reference_stats.keys() and grads.keys() == reference_grads.keys() and len(grads) > 10
    worst = max(abs(stats[key] - value) / max(abs(value), 1e-9) for key, value in reference_stats.items())
    for name, value in reference_grads.items():
        scale = value.norm().item()
        if scale == 0:  # an exact cancellation (RpGAN's last bias, in the fp32 4x4 stage) up to fp32 rounding
            assert grads[name].norm().item() < 1e-6, name
            continue
        worst = max(worst, (grads[name] - value).norm().item() / scale)
    return worst


# Every Table 2 row in bf16 (A..C: the stripped and StyleGAN2 networks; D1..E: the ResNets) and the projection D.
# The small ResNet and the toy MLP have no low-precision option: fp32 only, compared at 1e-5 above.
@pytest.mark.parametrize("row, options", [(row, {}) for row in ROWS] + [("E", dict(preset="cifar10"))])
def test_a_bf16_iteration_computed_in_bf16_agrees_on_the_fast_and_the_plain_operators(row, options, monkeypatch):
    model_args = dict(BF16, **options)
    emulated = _iteration(row, plain=True, model_args=model_args)
    _compute_stages_in_their_format(monkeypatch)
    dtypes = set()
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, inputs, output: dtypes.add(output.dtype) if isinstance(module, OperatorLayer) else None)
    try:
        fast = _iteration(row, plain=False, model_args=model_args)
    finally:
        hook.remove()
    assert torch.bfloat16 in dtypes  # the fast operators computed in bf16, fp32 weights cast to it
    plain = _iteration(row, plain=True, model_args=model_args)
    assert _worst_relative_difference(fast, plain) <= BF16_RELATIVE
    assert _worst_relative_difference(emulated, plain) > BF16_RELATIVE


def test_plain_and_fast_resampling_agree_and_plain_is_bitwise_the_reference():
    """Depthwise channels_last (fast) and per-channel (plain) resampling agree to fp64 rounding."""
    x = torch.randn(2, 5, 8, 8, dtype=torch.float64)
    for layer in (Upsample().double(), Downsample().double()):
        plain = set_operators(layer, PlainOperators)(x)
        torch.testing.assert_close(set_operators(layer, FastOperators)(x), plain, rtol=1e-13, atol=1e-15)
        assert plain.shape[2] == (16 if isinstance(layer, Upsample) else 4)
    # the bilinear weights: a constant image stays constant away from the borders
    ones = torch.ones(1, 1, 8, 8)
    assert torch.allclose(set_operators(Upsample(), FastOperators)(ones)[..., 2:-2, 2:-2], torch.ones(1, 1, 12, 12))
    assert torch.allclose(set_operators(Downsample(), FastOperators)(ones)[..., 1:-1, 1:-1], torch.ones(1, 1, 2, 2))


def test_placement_chooses_the_operators_once_for_the_device():
    """A pair runs the fast operators where it is built (the CPU) and on the CPU; the plain ones on the meta
    device and wherever it is placed with them, until it is placed again."""
    pair = create_model("E", preset="stackedmnist", width=0.03125, resolution=16)
    layers = [m for m in pair.discriminator.modules() if isinstance(m, (Upsample, Downsample)) or type(m).__name__ == "Convolution"]
    assert layers and all(m.operators is FastOperators for m in layers)
    pair.place("cpu", PlainOperators)
    assert all(m.operators is PlainOperators for m in layers)
    pair.place("meta")
    assert all(m.operators is PlainOperators for m in layers) and pair.discriminator.from_rgb.weight.is_meta
    with torch.device("meta"):
        assert create_model("E", preset="stackedmnist", width=0.03125, resolution=16).discriminator.from_rgb.operators is PlainOperators


def test_the_fold_is_used_where_supported_and_skips_the_backward_of_ds_forward_graph(monkeypatch):
    """E's D step runs each layer's first-order backward once per side when folded (the input-gradient
    pass, which also carries the adversarial gradient); unfolded, the adversarial backward runs it once
    more on each side. With R1 + R2 on, and on a lazy step without penalties."""
    from roadmap import step as step_module
    from roadmap.networks import cpu_ops
    from roadmap.step import discriminator_step, folds

    calls = []
    original = cpu_ops._Layer.backward

    def counted(ctx, grad):
        calls.append(1)
        return original(ctx, grad)

    monkeypatch.setattr(cpu_ops._Layer, "backward", staticmethod(counted))
    torch.manual_seed(0)
    pair = create_model("E", preset="stackedmnist", width=0.03125, resolution=16)
    real, z = torch.rand(4, 3, 16, 16), torch.randn(4, pair.latent_dim)
    layers = sum(1 for module in pair.discriminator.modules()
                 if type(module).__name__ in ("Convolution", "Linear", "Downsample"))  # the head's depthwise is a Convolution
    assert folds(pair.discriminator)
    for weight in (1, 0):  # a penalty step, a lazy step
        calls.clear()
        discriminator_step(pair, real, None, z, "rpgan", ["r1", "r2"], 1.0, weight)
        assert len(calls) == 2 * layers, weight
    monkeypatch.setattr(step_module, "folds", lambda discriminator: False)
    for weight in (1, 0):
        calls.clear()
        discriminator_step(pair, real, None, z, "rpgan", ["r1", "r2"], 1.0, weight)
        assert len(calls) == 4 * layers, weight
    # not supported: the projection D, GroupNorm, a smooth activation, the StyleGAN2 D of Config A
    for row, options in (("E", dict(preset="cifar10")), ("E", dict(normalization="group")), ("E", dict(activation="gelu")),
                         ("A", {})):
        other = create_model(row, **dict(dict(preset="stackedmnist", width=0.03125, resolution=16), **options))
        assert not folds(other.discriminator), (row, options)
    assert not folds(pair.place("cpu", PlainOperators).discriminator)


def test_the_input_gradient_pass_computes_no_weight_gradients(monkeypatch):
    """R1/R2's input gradient (autograd.grad on the images, with a graph) would otherwise run one
    weight-gradient kernel per layer that autograd.grad discards: E's folded D step with R1 + R2 runs
    them only in the double backward, once per weighted layer and side."""
    from roadmap.networks import cpu_ops
    from roadmap.step import discriminator_step

    calls = []
    original = cpu_ops._WeightGradient.forward

    def counted(ctx, *args):
        calls.append(1)
        return original(ctx, *args)

    monkeypatch.setattr(cpu_ops._WeightGradient, "forward", staticmethod(counted))
    torch.manual_seed(0)
    pair = create_model("E", preset="stackedmnist", width=0.03125, resolution=16)
    real, z = torch.rand(4, 3, 16, 16), torch.randn(4, pair.latent_dim)
    weighted = sum(1 for module in pair.discriminator.modules() if type(module).__name__ in ("Convolution", "Linear"))
    discriminator_step(pair, real, None, z, "rpgan", ["r1", "r2"], 1.0, 1)
    assert len(calls) == 2 * weighted
    calls.clear()
    monkeypatch.setattr(cpu_ops.Capture, "input_gradient", lambda capture, logits, inputs, create_graph: torch.autograd.grad(
        logits.sum(), inputs, create_graph=create_graph, retain_graph=True)[0])  # without inputs_only
    discriminator_step(pair, real, None, z, "rpgan", ["r1", "r2"], 1.0, 1)
    assert len(calls) == 4 * weighted


def test_a_plug_in_objective_that_ignores_fake_logits_folds_like_the_plain_step(monkeypatch):
    """A registered objective whose D loss reads only the real logits (its fake cotangent is None)."""
    import torch.nn.functional as F

    from roadmap import losses

    real_only = losses.Objective(name="real-only", discriminator=lambda real, fake: F.softplus(-real),
                                 generator=lambda real, fake: F.softplus(-fake), generator_needs_real=False,
                                 f_prime_at_zero=0.5)
    monkeypatch.setitem(losses._objectives, "real-only", real_only)
    _assert_same_iteration("E", loss=LossSpec(loss="real-only", penalties=("r1",), lazy_interval=1))


def test_the_first_order_fold_of_layer_biases_on_the_stripped_d():
    """Config B's own loss (GAN + R1): the fake side folds in the first-order pass, through the stripped
    D's biased layers (its output Linear has a bias, which GAN's loss does not cancel)."""
    _assert_same_iteration("B", loss=LossSpec(loss="gan", penalties=("r1",), lazy_interval=1))
