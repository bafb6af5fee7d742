"""PacGAN coverage metrics on samples with a known answer, and the toy data sets and networks."""
import math

import numpy as np
import pytest
import torch

from roadmap.registry import create_dataset, create_model
from toy2d.metrics import curve_metrics, mixture_metrics, reverse_kl


def test_perfect_samples_cover_every_mode():
    data = create_dataset("25gaussians")
    means = data.means.numpy()
    samples = np.repeat(means, 100, axis=0)
    result = mixture_metrics(samples, means, data.std)
    assert result == dict(modes=25, modes_pacgan=25, modes_total=25, hq_fraction=1.0, kl=pytest.approx(0.0))


def test_half_the_modes_give_log_two_and_far_samples_are_low_quality():
    data = create_dataset("ring8")
    means = data.means.numpy()
    samples = np.concatenate([np.repeat(means[:4], 50, axis=0), np.full((200, 2), 5.0)])
    result = mixture_metrics(samples, means, data.std)
    assert result["modes"] == 4 and result["hq_fraction"] == 0.5
    assert result["kl"] == pytest.approx(math.log(2))


def test_a_covered_mode_needs_a_tenth_of_its_expected_share():
    means = np.array([[0.0, 0.0], [10.0, 0.0]])
    samples = np.concatenate([np.zeros((951, 2)), np.full((49, 2), [10.0, 0.0])])  # mode 2 expects 500; 49 < 50
    result = mixture_metrics(samples, means, 0.1)
    assert result["modes"] == 1 and result["modes_pacgan"] == 2
    samples[900] = [10.0, 0.0]  # now 50 >= 50
    assert mixture_metrics(samples, means, 0.1)["modes"] == 2


@pytest.mark.parametrize("name, half_width, pacgan_at_least", [("25gaussians", 5.0, 15), ("ring8", 1.5, 0)])
def test_a_uniform_fill_of_the_square_covers_no_mode(name, half_width, pacgan_at_least):
    """PacGAN's count gives a uniform fill of 25 Gaussians' square ~21 of 25 modes (issue 24); ours gives none."""
    data = create_dataset(name)
    samples = np.random.default_rng(0).uniform(-half_width, half_width, size=(2500, 2))
    result = mixture_metrics(samples, data.means.numpy(), data.std)
    assert result["modes"] == 0 and result["modes_pacgan"] >= pacgan_at_least and result["hq_fraction"] < 0.03


@pytest.mark.parametrize("name", ["circle", "line"])
def test_a_uniform_fill_of_the_square_covers_no_arc_of_a_curve(name):
    data = create_dataset(name)
    samples = np.random.default_rng(0).uniform(-1.5, 1.5, size=(2500, 2))
    result = data.evaluate(lambda n: torch.tensor(samples[:n]))
    assert result["coverage"] == 0.0 and result["hq_fraction"] < 0.05
    exact = data.evaluate(lambda n: data.sample(n, torch.Generator().manual_seed(0))[0])
    assert exact["coverage"] == 1.0 and exact["hq_fraction"] > 0.99


def test_reverse_kl_known_value():
    assert reverse_kl(np.array([3, 1]), np.array([0.5, 0.5])) == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))


def test_curve_metrics_on_exact_and_half_circle():
    data = create_dataset("circle")
    t = (np.arange(1000) + 0.5) / 1000
    on_curve = data.point(torch.tensor(t)).numpy()
    distances, positions = data.project(on_curve)
    full = curve_metrics(distances, positions)
    assert full["support_distance"] < 1e-9 and full["coverage"] == 1.0 and full["kl"] == pytest.approx(0.0, abs=1e-12)
    half = curve_metrics(*data.project(on_curve[:500]))
    assert half["coverage"] == 0.5 and half["hq_fraction"] == 1.0 and half["kl"] == pytest.approx(math.log(2))


def test_line_projection_distance():
    data = create_dataset("line")
    distances, positions = data.project(np.array([[0.0, 0.3], [2.0, 0.0]]))
    assert distances == pytest.approx([0.3, 1.0]) and positions == pytest.approx([0.5, 1 - 1e-12])


def test_data_sets_sample_their_supports():
    rng = torch.Generator().manual_seed(0)
    ring, _ = create_dataset("ring8").sample(4000, rng)
    assert ring.norm(dim=1).mean().item() == pytest.approx(1.0, abs=0.01)
    grid, labels = create_dataset("25gaussians").sample(4000, rng)
    assert labels is None and set(torch.round(grid / 2).unique().tolist()) == {-2.0, -1.0, 0.0, 1.0, 2.0}


def test_toy_mlp_parameter_count_and_overrides():
    pair = create_model("toy_mlp")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(pair.generator) == 16 * 128 + 128 + 2 * (128 * 128 + 128) + 128 * 2 + 2
    assert count(pair.discriminator) == 2 * 128 + 128 + 2 * (128 * 128 + 128) + 128 + 1
    small = create_model("toy_mlp", hidden=8, depth=1)
    assert count(small.discriminator) == 2 * 8 + 8 + 8 + 1
    assert small.discriminator(torch.randn(5, 2)).shape == (5,)
