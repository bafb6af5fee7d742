"""Stacked MNIST mode metrics (PacGAN/VEEGAN protocol; paper Tables 1 and 3): mode count and reverse KL.

Pure functions of digit predictions or mode ids; the classifier lives in `stackedmnist.classifier`.
"""
import math

import torch

NUM_MODES = 1000
MIN_MODE_COUNT = 10  # "robustly covered": at 26,000 uniform samples (26 per mode) P(count < 10) ~ 1e-4


def modes_from_digits(digits: torch.Tensor) -> torch.Tensor:
    """Digits of the R, G, B channels int [N, 3] -> mode ids int64 [N] = 100*d_R + 10*d_G + d_B."""
    digits = digits.long()
    return digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]


def mode_histogram(modes: torch.Tensor) -> torch.Tensor:
    """Mode ids int [N] in [0, 1000) -> counts int64 [1000]."""
    return torch.bincount(modes.long(), minlength=NUM_MODES)


def count_modes(histogram: torch.Tensor, min_count: int = 1) -> int:
    """Number of modes with at least `min_count` samples, from counts [1000]."""
    return int((histogram >= min_count).sum())


def reverse_kl(histogram: torch.Tensor) -> float:
    """KL(p_model || uniform over 1000) in nats from counts [1000]: sum_k p_k log(1000 p_k), 0 log 0 = 0."""
    p = histogram.double() / histogram.sum()
    p = p[p > 0]
    return float((p * torch.log(p * NUM_MODES)).sum())


def stacked_mnist_metrics(modes: torch.Tensor) -> dict:
    """The table row for mode ids [N]: modes, kl, modes_min_count (>= MIN_MODE_COUNT samples), n."""
    histogram = mode_histogram(modes)
    return dict(modes=count_modes(histogram), kl=reverse_kl(histogram),
                modes_min_count=count_modes(histogram, MIN_MODE_COUNT), n=int(len(modes)))


def recognisable_metrics(modes: torch.Tensor, recognisable: torch.Tensor) -> dict:
    """Mode ids [N] and the quality gate's verdict bool [N] (stackedmnist/quality.py) -> recognisable_modes
    (modes with at least one recognisable sample), recognisable_modes_min_count (>= MIN_MODE_COUNT of them) and
    recognisable_fraction (share of samples that are recognisable)."""
    histogram = mode_histogram(modes[recognisable.bool()])
    return dict(recognisable_modes=count_modes(histogram), recognisable_modes_min_count=count_modes(histogram, MIN_MODE_COUNT),
                recognisable_fraction=float(recognisable.float().mean()) if len(recognisable) else 0.0)


def uniform_kl(k: int) -> float:
    """KL of a distribution spread evenly over k of the 1000 modes: log(1000 / k)."""
    return math.log(NUM_MODES / k)

