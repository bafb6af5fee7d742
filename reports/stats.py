"""Seed statistics for the report tables: mean and 95% Student-t confidence interval (paper Tables 1-3).

The t quantile is computed here (closed-form Student-t CDF for integer degrees of freedom,
inverted by bisection) so that the report needs no SciPy.
"""
import math

import numpy as np

CONFIDENCE = 0.95


def t_cdf_two_sided(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with integer df >= 1 (Abramowitz & Stegun 26.7.3/26.7.4)."""
    theta = math.atan(t / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    if df % 2 == 1:  # odd: 2/pi (theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...))
        term, total = 1.0, 1.0 if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):
            term *= (2 * k) / (2 * k + 1) * cos2
            total += term
        return 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    term, total = 1.0, 1.0  # even: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)
    for k in range(1, df // 2):
        term *= (2 * k - 1) / (2 * k) * cos2
        total += term
    return math.sin(theta) * total


def t_quantile(confidence: float, df: int) -> float:
    """Half-width multiplier t such that P(|T| < t) = confidence (e.g. 12.706 for 0.95, df = 1)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    low, high = 0.0, 1.0
    while t_cdf_two_sided(high, df) < confidence:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if t_cdf_two_sided(middle, df) < confidence else (low, middle)
    return (low + high) / 2


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
