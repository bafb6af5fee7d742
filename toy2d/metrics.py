"""Coverage metrics for 2-D toy data (PacGAN's synthetic-data protocol; paper Appendix E).

Mixtures: each sample goes to its nearest mode by std-normalized distance and is "high
quality" when that distance is below 3 standard deviations. Curves (circle, line): distance to
the true support, and coverage/KL over equal arc-length bins.
"""
import numpy as np

HIGH_QUALITY_STDS = 3.0  # PacGAN: a sample within 3 std of its nearest mode is high quality
STRICT_SHARE = 0.01  # stricter mode count: at least 1% of the mode's expected share of samples


def reverse_kl(histogram: np.ndarray, weights: np.ndarray) -> float:
    """KL(p_model || p_true) in nats between a count histogram [K] and true weights [K].

    Empty model bins contribute 0 (0 log 0 = 0); an empty histogram gives inf.
    """
    counts = np.asarray(histogram, dtype=np.float64)
    if counts.sum() == 0:
        return float("inf")
    p = counts / counts.sum()
    q = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    nonzero = p > 0
    return float(np.sum(p[nonzero] * np.log(p[nonzero] / q[nonzero])))


def mixture_metrics(samples: np.ndarray, means: np.ndarray, std: float, weights=None) -> dict:
    """PacGAN metrics for samples [N, 2] of a Gaussian mixture with means [K, 2] and scalar std.

    Returns modes (modes with >= 1 high-quality sample), modes_strict (>= 1% of the expected
    share N*w_k), hq_fraction, kl (reverse KL of the high-quality mode histogram vs weights).
    """
    samples, means = np.asarray(samples, dtype=np.float64), np.asarray(means, dtype=np.float64)
    k = len(means)
    weights = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, dtype=np.float64)
    distances = np.linalg.norm(samples[:, None, :] - means[None, :, :], axis=-1) / std  # [N, K]
    nearest = distances.argmin(1)
    high_quality = distances[np.arange(len(samples)), nearest] < HIGH_QUALITY_STDS
    histogram = np.bincount(nearest[high_quality], minlength=k)
    expected = len(samples) * weights / weights.sum()
    return dict(
        modes=int((histogram > 0).sum()),
        modes_strict=int((histogram >= STRICT_SHARE * expected).sum()),
        modes_total=k,
        hq_fraction=float(high_quality.mean()),
        kl=reverse_kl(histogram, weights),
    )


def curve_metrics(distances: np.ndarray, positions: np.ndarray, bins: int = 50) -> dict:
    """Metrics for samples of a 1-D curve: distances [N] to the support and arc positions [N] in [0, 1).

    Returns support_distance (mean distance), coverage (fraction of equal arc bins holding a
    sample) and kl (reverse KL of the arc histogram vs uniform).
    """
    positions = np.clip(np.asarray(positions, dtype=np.float64), 0.0, 1.0 - 1e-12)
    histogram = np.bincount((positions * bins).astype(int), minlength=bins)
    return dict(
        support_distance=float(np.mean(distances)),
        coverage=float((histogram > 0).mean()),
        kl=reverse_kl(histogram, np.full(bins, 1.0 / bins)),
    )
