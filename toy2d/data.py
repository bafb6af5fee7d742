"""2-D toy data sets: 25 Gaussians and 8-Gaussian ring (PacGAN), circle and line (paper Appendix E)."""
import math

import numpy as np
import torch

from roadmap.registry import register_dataset
from toy2d.metrics import HIGH_QUALITY_STDS, curve_metrics, mixture_metrics

EVAL_SAMPLES = 2500  # PacGAN's protocol scores 2,500 generated samples
CURVE_NOISE = 0.01  # std of the Gaussian noise around circle and line samples


class ToyData:
    """What every 2-D toy shares: unconditional 2-D samples, a scatter picture, a reference sample."""

    shape = (2,)
    num_classes = 0

    def save_samples(self, samples, path) -> None:
        save_scatter(self, samples, path)

    def reference(self, n: int, seed: int = 0) -> torch.Tensor:
        """n samples of the true density (fixed seed), drawn under the generated ones in plots."""
        return self.sample(n, torch.Generator().manual_seed(seed))[0]


class GaussianMixture(ToyData):
    """Equal-weight isotropic Gaussian mixture with means [K, 2] and one std."""

    def __init__(self, name: str, means, std: float):
        self.name, self.means, self.std = name, torch.tensor(means, dtype=torch.float32), std

    def sample(self, batch_size, generator):
        index = torch.randint(len(self.means), (batch_size,), generator=generator)
        noise = torch.randn(batch_size, 2, generator=generator)
        return self.means[index] + self.std * noise, None

    def evaluate(self, generate, n: int = EVAL_SAMPLES) -> dict:
        return mixture_metrics(generate(n).numpy(), self.means.numpy(), self.std)


class Curve(ToyData):
    """Uniform samples on a 1-D curve (unit circle or the segment [-1, 1] x {0}) plus small noise."""

    def __init__(self, name: str, noise: float = CURVE_NOISE):
        self.name, self.noise = name, noise

    def point(self, t: torch.Tensor) -> torch.Tensor:
        """Curve point at arc position t in [0, 1)."""
        if self.name == "circle":
            angle = 2 * math.pi * t
            return torch.stack([torch.cos(angle), torch.sin(angle)], -1)
        return torch.stack([2 * t - 1, torch.zeros_like(t)], -1)

    def project(self, x: np.ndarray):
        """(distance to the curve [N], arc position in [0, 1) [N]) of points x [N, 2]."""
        if self.name == "circle":
            radius = np.linalg.norm(x, axis=1)
            return np.abs(radius - 1.0), (np.arctan2(x[:, 1], x[:, 0]) / (2 * np.pi)) % 1.0
        t = np.clip((x[:, 0] + 1) / 2, 0.0, 1.0)
        nearest = np.stack([2 * t - 1, np.zeros_like(t)], 1)
        return np.linalg.norm(x - nearest, axis=1), np.minimum(t, 1 - 1e-12)

    def sample(self, batch_size, generator):
        t = torch.rand(batch_size, generator=generator)
        return self.point(t) + self.noise * torch.randn(batch_size, 2, generator=generator), None

    def evaluate(self, generate, n: int = EVAL_SAMPLES) -> dict:
        distances, positions = self.project(generate(n).numpy().astype(np.float64))
        return curve_metrics(distances, positions, near=HIGH_QUALITY_STDS * self.noise)


def plot_scatter(data, samples, ax=None):
    """Generated samples over a reference sample of the true density; returns (fig, ax)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.2, 3.2)) if ax is None else (ax.figure, ax)
    reference = data.reference(2500).numpy()
    samples = np.asarray(samples)
    ax.scatter(reference[:, 0], reference[:, 1], s=2, c="0.75", label="data", rasterized=True)
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:blue", alpha=0.6, label="generated", rasterized=True)
    limit = max(1.5, float(np.abs(reference).max()) * 1.3)
    ax.set(xlim=(-limit, limit), ylim=(-limit, limit), aspect="equal", xticks=[], yticks=[], title=data.name)
    return fig, ax


def save_scatter(data, samples, path) -> None:
    import matplotlib.pyplot as plt

    fig, _ = plot_scatter(data, samples)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@register_dataset("25gaussians", kind="toy_mixture")
def twenty_five_gaussians(*, std: float = 0.05) -> GaussianMixture:
    """5x5 grid of Gaussians at {-4,-2,0,2,4}^2, std 0.05 (PacGAN)."""
    grid = [(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)]
    return GaussianMixture("25gaussians", grid, std)


@register_dataset("ring8", kind="toy_mixture")
def ring8(*, std: float = 0.01) -> GaussianMixture:
    """8 Gaussians on the unit circle at angles 2 pi k / 8, std 0.01 (PacGAN)."""
    means = [(math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)) for k in range(8)]
    return GaussianMixture("ring8", means, std)


@register_dataset("circle", kind="toy_curve")
def circle(*, noise: float = CURVE_NOISE) -> Curve:
    """Uniform on the unit circle plus small Gaussian noise."""
    return Curve("circle", noise)


@register_dataset("line", kind="toy_curve")
def line(*, noise: float = CURVE_NOISE) -> Curve:
    """Uniform on the segment from (-1, 0) to (1, 0) plus small Gaussian noise."""
    return Curve("line", noise)
