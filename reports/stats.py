"""Seed statistics for the report tables (paper Tables 1-3) and the stability map (issue 15).

Mean with a Student-t interval over seeds; Wilson interval for a rate such as "diverged in k
of n seeds"; percentile bootstrap interval for a median; exact McNemar test for two settings
run on the same seeds. The distributions come from SciPy (installed with clean-fid) rather
than hand-written series, so there is one implementation to trust.
"""
import math

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95


def t_cdf_two_sided(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with df >= 1 degrees of freedom (t >= 0)."""
    return float(2 * scipy_stats.t.cdf(t, df) - 1)


def t_quantile(confidence: float, df: int) -> float:
    """Half-width multiplier t such that P(|T| < t) = confidence (e.g. 12.706 for 0.95, df = 1)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    return float(scipy_stats.t.ppf((1 + confidence) / 2, df))


def mean_ci(values) -> tuple:
    """(mean, half-width of the 95% t interval or None for n < 2, n) of values [n]."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n == 0:
        return None, None, 0
    mean = float(values.mean())
    if n < 2 or not np.all(np.isfinite(values)):
        return mean, None, n
    half_width = t_quantile(CONFIDENCE, n - 1) * float(values.std(ddof=1)) / math.sqrt(n)
    return mean, half_width, n


def wilson_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple:
    """(low, high) Wilson score interval for a rate of k successes in n trials; (None, None) for n = 0.

    Wilson rather than the normal approximation because our cells have few seeds (n ~ 8) and
    rates near 0 or 1, where p +- z sqrt(p(1-p)/n) collapses to zero width or leaves [0, 1].
    """
    if n == 0:
        return None, None
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    interval = scipy_stats.binomtest(k, n).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


def bootstrap_interval(values, statistic=np.median, confidence: float = CONFIDENCE, resamples: int = 2000,
                       seed: int = 0) -> tuple:
    """(low, high) percentile bootstrap interval of statistic over values [n]; (None, None) for n = 0.

    statistic(array [resamples, n], axis=1) -> [resamples] (numpy reductions do). The same seed
    gives the same interval, so a committed report is reproducible. Values must be finite.
    Percentile rather than BCa because BCa is undefined for the constant samples that short
    stable runs produce (its acceleration divides by zero).
    """
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return None, None
    rng = np.random.default_rng(seed)
    samples = values[rng.integers(0, len(values), size=(resamples, len(values)))]
    estimates = statistic(samples, axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(estimates, [tail, 1 - tail])
    return float(low), float(high)


def paired_binary_test(a, b) -> dict:
    """Exact McNemar test of two settings on the same seeds: a[i], b[i] are seed i's outcomes [n].

    Only discordant seeds carry evidence; under "no difference" only_a ~ Binomial(only_a +
    only_b, 1/2), so p_value is the two-sided exact binomial p (1.0 with no discordant seed).
    """
    if len(a) != len(b):
        raise ValueError(f"paired outcomes need equal lengths, got {len(a)} and {len(b)}")
    pairs = [(bool(x), bool(y)) for x, y in zip(a, b)]
    counts = dict(both=pairs.count((True, True)), only_a=pairs.count((True, False)),
                  only_b=pairs.count((False, True)), neither=pairs.count((False, False)))
    discordant = counts["only_a"] + counts["only_b"]
    p_value = float(scipy_stats.binomtest(counts["only_a"], discordant, 0.5).pvalue) if discordant else 1.0
    return dict(counts, n=len(pairs), p_value=p_value, test="exact McNemar (two-sided binomial on discordant pairs)")
