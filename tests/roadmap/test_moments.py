"""Streamed feature moments (roadmap/moments.py; the Frechet distances of Section 4 and Tables 1, 3): numpy's mean and
covariance within 1e-12 however the rows arrive, and the Frechet distance of known Gaussians."""
import numpy as np
import pytest
import torch

from roadmap.moments import FeatureMoments, distance_of_gaussians, moments_of


def test_blocks_give_numpys_mean_and_covariance_far_from_the_origin():
    """Features offset by 1e4 with unit spread: a naive one-pass sum of squares would lose ~7 of float64's 16 digits
    here; the shifted sums keep 12."""
    rows = np.random.default_rng(0).normal(size=(1000, 5)) + 1e4
    mean, covariance = moments_of([rows[:1], rows[1:300], torch.from_numpy(rows[300:999]), rows[999:]])
    assert np.allclose(mean, rows.mean(0), rtol=1e-12, atol=0)
    assert np.allclose(covariance, np.cov(rows, rowvar=False), rtol=1e-12, atol=1e-12)


def test_float32_tensors_and_empty_blocks():
    rows = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    moments = FeatureMoments().add(rows[:0]).add(rows[:10]).add(rows[10:])
    mean, covariance = moments.mean_and_covariance()
    assert moments.count == 64
    assert np.allclose(covariance, np.cov(rows.double().numpy(), rowvar=False), rtol=1e-12, atol=1e-15)
    assert mean.dtype == covariance.dtype == np.float64


def test_one_sample_has_no_covariance():
    with pytest.raises(ValueError, match="at least 2 samples, got 1"):
        FeatureMoments().add(np.zeros((1, 3))).mean_and_covariance()


def test_distance_of_known_gaussians():
    """||mu_a - mu_b||^2 + tr(A + B - 2 (A B)^1/2): N(0, I) and N(1, 4 I) in 3-d give 3 + 3 (1 + 4 - 4) = 6."""
    a = (np.zeros(3), np.eye(3))
    b = (np.ones(3), 4 * np.eye(3))
    assert distance_of_gaussians(a, b) == pytest.approx(6.0, rel=1e-9)
    assert distance_of_gaussians(a, a) == pytest.approx(0.0, abs=1e-9)
