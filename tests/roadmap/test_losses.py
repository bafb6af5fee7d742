"""Losses against hand-computed values and analytic gradients (paper Section 2)."""
import math

import pytest
import torch

from roadmap.errors import ConfigError
from roadmap.losses import (
    check_loss_spec,
    discriminator_loss,
    f,
    generator_loss,
    gradient_penalty,
    regularization_weight,
)


def test_f_and_its_slope_at_zero():
    t = torch.zeros((), requires_grad=True)
    value = f(t)
    value.backward()
    assert value.item() == pytest.approx(-math.log(2))
    assert t.grad.item() == pytest.approx(0.5)


def test_equal_logits_give_log_two():
    logits = torch.tensor([-3.0, 0.0, 2.5])
    for loss in (discriminator_loss("rpgan", logits, logits), generator_loss("rpgan", logits, logits)):
        assert torch.allclose(loss, torch.full((3,), math.log(2)))
    zero = torch.zeros(3)
    assert torch.allclose(discriminator_loss("gan", zero, zero), torch.full((3,), 2 * math.log(2)))
    assert torch.allclose(generator_loss("gan", zero, zero), torch.full((3,), math.log(2)))


def test_losses_are_per_sample_and_match_closed_forms():
    real = torch.tensor([1.0, -2.0, 0.5])
    fake = torch.tensor([0.3, 0.7, -1.0])
    sigmoid = torch.sigmoid
    assert torch.allclose(discriminator_loss("gan", real, fake), -torch.log(sigmoid(real)) - torch.log(1 - sigmoid(fake)))
    assert torch.allclose(discriminator_loss("rpgan", real, fake), -torch.log(sigmoid(real - fake)))
    assert torch.allclose(generator_loss("gan", real, fake), -torch.log(sigmoid(fake)))
    assert torch.allclose(generator_loss("rpgan", real, fake), -torch.log(sigmoid(fake - real)))


def test_rpgan_gradient_is_analytic():
    real = torch.tensor([0.4, -1.2], requires_grad=True)
    fake = torch.tensor([1.5, 0.1], requires_grad=True)
    discriminator_loss("rpgan", real, fake).sum().backward()
    expected = -torch.sigmoid(fake.detach() - real.detach())  # d softplus(f - r) / dr
    assert torch.allclose(real.grad, expected)
    assert torch.allclose(fake.grad, -expected)


def test_r1_of_linear_discriminator_is_weight_norm_squared():
    w = torch.tensor([3.0, -4.0])
    x = torch.randn(5, 2, requires_grad=True)
    penalty = gradient_penalty(x @ w, x)
    assert penalty.shape == (5,)
    assert torch.allclose(penalty, torch.full((5,), 25.0))  # gamma/2 * R1 = gamma/2 * |w|^2


def test_gradient_penalty_is_differentiable_in_parameters():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    x = torch.randn(4, 2, requires_grad=True)
    gradient_penalty(x @ w, x).mean().backward()
    assert torch.allclose(w.grad, 2 * w.detach())  # d |w|^2 / dw


@pytest.mark.parametrize("interval", [1, 3, 8])
def test_lazy_weight_is_k_on_every_kth_step(interval):
    weights = [regularization_weight(step, interval) for step in range(48)]
    assert [step for step, w in enumerate(weights) if w] == list(range(0, 48, interval))
    assert set(w for w in weights if w) == {interval}
    assert sum(weights) == 48  # same expected penalty per step as the eager schedule


@pytest.mark.parametrize("spec, field", [(("wgan", [], 1), "loss"), (("gan", ["r3"], 1), "penalty"),
                                         (("gan", ["r1", "r1"], 1), "penalties"), (("gan", [], 0), "lazy_interval")])
def test_bad_loss_specs_name_the_field(spec, field):
    with pytest.raises(ConfigError, match=field):
        check_loss_spec(*spec)
    with pytest.raises(ConfigError):
        discriminator_loss("wgan", torch.zeros(1), torch.zeros(1))


def test_hinge_entry_matches_its_definition():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.5])
    assert torch.equal(discriminator_loss("hinge", real, fake), torch.tensor([0.0, 0.5, 2.0]) + torch.tensor([0.0, 1.0, 2.5]))
    assert torch.equal(generator_loss("hinge", real, fake), -fake)


def test_registry_metadata_and_unknown_name():
    from roadmap.losses import get_objective, list_objectives

    assert {"gan", "rpgan", "hinge"} <= set(list_objectives())
    assert get_objective("rpgan").generator_needs_real and not get_objective("gan").generator_needs_real
    with pytest.raises(ConfigError, match="did you mean 'rpgan'"):
        get_objective("rpgn")
