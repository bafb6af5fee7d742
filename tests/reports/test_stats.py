"""Report statistics on cases with answers computed by hand."""
import math

import numpy as np
import pytest

from reports.stats import (CONFIDENCE, bootstrap_interval, mean_ci, paired_binary_test, t_cdf_two_sided, t_quantile,
                           wilson_interval)

Z975 = 1.959964  # standard normal 97.5% quantile


def test_t_wrappers_match_tables_and_invert():
    assert t_quantile(0.95, 1) == pytest.approx(12.706204736174696, rel=1e-9)
    assert t_quantile(0.95, 4) == pytest.approx(2.7764451051977987, rel=1e-9)
    assert t_cdf_two_sided(12.706204736174696, 1) == pytest.approx(0.95, abs=1e-12)
    assert t_cdf_two_sided(1.0, 1) == pytest.approx(0.5)  # Cauchy: 2/pi * atan(1)
    with pytest.raises(ValueError):
        t_quantile(0.95, 0)


def test_mean_ci_unchanged():
    mean, half, n = mean_ci([1.0, 2.0, 3.0])
    assert (mean, n) == (2.0, 3) and half == pytest.approx(4.302652729749464 * 1.0 / math.sqrt(3))
    assert CONFIDENCE == 0.95


def test_wilson_three_of_eight():
    k, n, z = 3, 8, Z975
    p = k / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = wilson_interval(3, 8)
    assert low == pytest.approx(center - half, abs=1e-6) and high == pytest.approx(center + half, abs=1e-6)
    assert (low, high) == pytest.approx((0.137, 0.694), abs=5e-4)


def test_wilson_edges():
    low, high = wilson_interval(0, 8)
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(Z975 ** 2 / (8 + Z975 ** 2), abs=1e-6)
    assert wilson_interval(0, 0) == (None, None)
    with pytest.raises(ValueError):
        wilson_interval(9, 8)


def test_bootstrap_constant_is_zero_width():
    assert bootstrap_interval([3.0] * 8) == (3.0, 3.0)
    assert bootstrap_interval([]) == (None, None)


def test_bootstrap_deterministic_and_contains_median():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0]
    low, high = bootstrap_interval(values, seed=3)
    assert (low, high) == bootstrap_interval(values, seed=3)
    assert low <= np.median(values) <= high
    assert min(values) <= low < high <= max(values)  # a median never leaves the data's range
    mean_low, mean_high = bootstrap_interval(values, statistic=np.mean, resamples=500)
    assert mean_high > 7.0  # the outlier pulls resampled means up, as it cannot pull medians


def test_paired_all_discordant_one_way():
    a = [True] * 6 + [True, False, False]
    b = [False] * 6 + [True, False, False]
    result = paired_binary_test(a, b)
    assert {k: result[k] for k in ("both", "only_a", "only_b", "neither", "n")} == dict(
        both=1, only_a=6, only_b=0, neither=2, n=9)
    assert result["p_value"] == pytest.approx(2 * 0.5 ** 6)


def test_paired_balanced_and_no_discordance():
    # 2 vs 1 discordant: P(X <= 1) + P(X >= 2) over Binomial(3, 1/2) = 1.0
    assert paired_binary_test([1, 1, 0, 1], [0, 0, 1, 1])["p_value"] == pytest.approx(1.0)
    assert paired_binary_test([True, False], [True, False])["p_value"] == 1.0
    with pytest.raises(ValueError):
        paired_binary_test([True], [True, False])
