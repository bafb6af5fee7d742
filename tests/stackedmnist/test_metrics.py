"""Stacked MNIST mode metrics on mode ids with known answers (no data needed)."""
import math

import pytest
import torch

from stackedmnist.metrics import (
    MIN_MODE_COUNT,
    count_modes,
    mode_histogram,
    modes_from_digits,
    reverse_kl,
    stacked_mnist_metrics,
    uniform_kl,
)


def test_modes_from_digits_reads_r_g_b_as_hundreds_tens_units():
    digits = torch.tensor([[0, 0, 0], [9, 9, 9], [3, 0, 7], [0, 5, 1]])
    assert modes_from_digits(digits).tolist() == [0, 999, 307, 51]


@pytest.mark.parametrize("k", [1, 10, 1000])
def test_k_evenly_covered_modes_score_k_and_log_1000_over_k(k):
    # A generator that reproduces a fixed set of k stacked images, each equally often.
    chosen = torch.randperm(1000, generator=torch.Generator().manual_seed(k))[:k]
    modes = chosen.repeat_interleave(26)
    result = stacked_mnist_metrics(modes)
    assert result["modes"] == k
    assert result["modes_min_count"] == k  # 26 samples each >= MIN_MODE_COUNT
    assert result["n"] == 26 * k
    assert result["kl"] == pytest.approx(math.log(1000 / k), abs=1e-12)
    assert uniform_kl(k) == pytest.approx(math.log(1000 / k))


def test_reverse_kl_of_an_uneven_histogram_matches_the_formula():
    histogram = torch.zeros(1000, dtype=torch.long)
    histogram[0], histogram[1] = 3, 1  # p = (3/4, 1/4)
    expected = 0.75 * math.log(0.75 * 1000) + 0.25 * math.log(0.25 * 1000)
    assert reverse_kl(histogram) == pytest.approx(expected, rel=1e-12)


def test_min_count_separates_rare_modes():
    modes = torch.cat([torch.full((MIN_MODE_COUNT,), 5), torch.full((MIN_MODE_COUNT - 1,), 6), torch.tensor([7])])
    histogram = mode_histogram(modes)
    assert histogram.shape == (1000,)
    assert histogram[5] == MIN_MODE_COUNT and histogram[6] == MIN_MODE_COUNT - 1
    assert count_modes(histogram) == 3
    assert count_modes(histogram, MIN_MODE_COUNT) == 1
