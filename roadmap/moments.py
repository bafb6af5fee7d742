"""Streamed mean and covariance of features for Frechet distances (paper Section 4's FID-50k; Tables 1, 3's fd_mnist_classifier).

A Frechet distance needs only the mean and covariance of each feature set, so an evaluation adds its features a
block at a time and memory does not grow with the number of samples (issue 22). The sums are kept in float64
about a shift (the first block's mean), which keeps the one-pass covariance as accurate as numpy's two-pass
`np.cov` (tests/roadmap/test_moments.py: within 1e-12 relative on features far from the origin).
"""
import numpy as np
import torch


class FeatureMoments:
    """Running count, mean and covariance of feature rows [B, F] added with `add` (arrays or tensors, any float dtype)."""

    def __init__(self):
        self.count = 0
        self.shift = self.total = self.products = None  # float64 [F], [F], [F, F]

    def add(self, features) -> "FeatureMoments":
        """Add the rows of `features` [B, F]; returns self."""
        rows = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) else np.asarray(features, np.float64)
        if len(rows) == 0:
            return self
        if self.shift is None:
            self.shift = rows.mean(0)
            self.total, self.products = np.zeros_like(self.shift), np.zeros((len(self.shift),) * 2)
        centred = rows - self.shift
        self.total += centred.sum(0)
        self.products += centred.T @ centred
        self.count += len(rows)
        return self

    def mean_and_covariance(self) -> tuple:
        """(mean float64 [F], covariance float64 [F, F], normalized by count - 1 as np.cov)."""
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 samples, got {self.count}")
        offset = self.total / self.count
        covariance = (self.products - self.count * np.outer(offset, offset)) / (self.count - 1)
        return self.shift + offset, covariance


def moments_of(blocks) -> tuple:
    """(mean [F], covariance [F, F]) of the feature blocks [B, F] of an iterable, added in order."""
    moments = FeatureMoments()
    for block in blocks:
        moments.add(block)
    return moments.mean_and_covariance()


def distance_of_gaussians(a: tuple, b: tuple) -> float:
    """Frechet distance between two (mean [F], covariance [F, F]) pairs (clean-fid's formula, FID's)."""
    from cleanfid.fid import frechet_distance as between_gaussians

    return float(between_gaussians(*a, *b))
