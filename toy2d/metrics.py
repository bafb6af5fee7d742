"""Coverage metrics for 2-D toy data (PacGAN's synthetic-data protocol; paper Appendix E).

Mixtures: each sample goes to its nearest mode by std-normalized distance and is "high
quality" when that distance is below 3 standard deviations. A mode counts as covered when it
holds at least MODE_SHARE of its expected share of the samples as high-quality ones: PacGAN's
"at least one high-quality sample" (kept as modes_pacgan) counts a uniform fill of the square
as 21-23 of 25 modes at 2,500 samples (about 44 samples land within 3 std of some mode by chance). Curves (circle, line): distance to
the true support, and coverage/KL over equal arc-length bins.
"""
import numpy as np

HIGH_QUALITY_STDS = 3.0  # PacGAN: a sample within 3 std of its nearest mode is high quality
# A covered mode holds >= 10% of its expected share N*w_k as high-quality samples: 10 of 100 for 25
# Gaussians at 2,500 samples, where a uniform fill of [-5, 5]^2 puts ~1.8 per mode (P(>= 10) ~ 1e-5).
MODE_SHARE = 0.1
# A covered arc bin of a curve holds >= 25% of its expected share N/bins as near samples: 12.5 of 50 at
# 2,500 samples and 50 bins, where a uniform fill of [-1.5, 1.5]^2 puts ~2 per bin near the circle.
ARC_SHARE = 0.25


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

    Returns modes (modes holding >= MODE_SHARE of their expected share N*w_k as high-quality samples),
    modes_pacgan (>= 1 high-quality sample, PacGAN's count), hq_fraction, kl (reverse KL of the
    high-quality mode histogram vs weights).
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
        modes=int((histogram >= MODE_SHARE * expected).sum()),
        modes_pacgan=int((histogram > 0).sum()),
        modes_total=k,
        hq_fraction=float(high_quality.mean()),
        kl=reverse_kl(histogram, weights),
    )


def curve_metrics(distances: np.ndarray, positions: np.ndarray, near: float = np.inf, bins: int = 50) -> dict:
    """Metrics for samples of a 1-D curve: distances [N] to the support and arc positions [N] in [0, 1).

    A sample is near the curve (high quality) when its distance is below `near` (the data set passes
    HIGH_QUALITY_STDS x its noise std). Returns support_distance (mean distance of all samples),
    hq_fraction, coverage (fraction of equal arc bins holding at least ARC_SHARE of their expected
    share N/bins as near samples: a uniform fill of the square covers nothing) and kl (reverse KL of
    the near samples' arc histogram vs uniform).
    """
    distances = np.asarray(distances, dtype=np.float64)
    positions = np.clip(np.asarray(positions, dtype=np.float64), 0.0, 1.0 - 1e-12)
    close = distances < near
    histogram = np.bincount((positions[close] * bins).astype(int), minlength=bins)
    return dict(
        support_distance=float(np.mean(distances)),
        hq_fraction=float(close.mean()) if len(close) else 0.0,
        coverage=float((histogram >= ARC_SHARE * len(distances) / bins).mean()) if len(distances) else 0.0,
        kl=reverse_kl(histogram, np.full(bins, 1.0 / bins)),
    )
