"""Stacked MNIST (PacGAN/VEEGAN protocol; paper Tables 1 and 3): three MNIST digits stacked into R, G and B.

Each sample draws three MNIST training digits independently and uniformly and puts them in the
R, G and B channels; its mode is 100*d_R + 10*d_G + d_B (1000 equally likely modes). Digits are
zero-padded from 28x28 to 32x32 by 2 pixels on every side, the convention of the Progressive GAN
dataset tool (`create_mnistrgb`), and scaled to [-1, 1]. An optional smaller `resolution` (CPU
presets) downsamples bilinearly (antialiased); the classifier scales samples back up to read them.
"""

from typing import Optional

import torch
import torch.nn.functional as F

from roadmap.errors import ConfigError
from roadmap.moments import FeatureMoments, distance_of_gaussians, moments_of
from roadmap.registry import register_dataset
from stackedmnist import metrics
from stackedmnist.mnist import data_root, load_mnist  # noqa: F401  (load_mnist: part of this module's API)

EVAL_SAMPLES = 26_000  # the PacGAN/VEEGAN protocol scores 26,000 generated samples
MNIST_PAD = 2  # pixels of zero padding on each side: 28 -> 32 (Progressive GAN dataset tool)
NATIVE_RESOLUTION = 32
REAL_FEATURE_SEED = 2024  # the real samples that fd_mnist_classifier compares against, fixed across runs
# Samples per evaluation block: a whole number of the classifier's batches (512) and of the gate's distance blocks
# (quality._CHUNK channels: 4096 samples x 3 channels are 3 of them), so every batch the classifier and cdist see is
# the one the whole-tensor computation sees, and the scores are bitwise the same; 16 generator calls of 256.
EVAL_BLOCK = 4096


def check_options(root=None, resolution: int = NATIVE_RESOLUTION) -> None:
    """The runner's pre-flight check: a valid resolution and an MNIST root that exists (no data loaded)."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or not 4 <= resolution <= NATIVE_RESOLUTION:
        raise ConfigError(f"dataset_args.resolution: expected an integer in [4, 32], got {resolution!r}")
    data_root(root)


class StackedMNIST:
    """Unconditional Stacked MNIST at `resolution` (32 native); samples [N, 3, r, r] in [-1, 1]."""

    name = "stackedmnist"
    num_classes = 0

    def __init__(self, root=None, resolution: int = NATIVE_RESOLUTION):
        check_options(root, resolution)
        self.root = root  # also where the mode classifier trains from on first use
        digits, self.labels = load_mnist(root, train=True)
        self.digits = F.pad(digits, (MNIST_PAD,) * 4)  # uint8 [60000, 32, 32]
        self.resolution = resolution
        self.shape = (3, resolution, resolution)
        self._real_feature_cache = {}

    def to_images(self, stacked: torch.Tensor) -> torch.Tensor:
        """uint8 [N, 3, 32, 32] -> float [N, 3, r, r] in [-1, 1]."""
        x = stacked.float() / 127.5 - 1.0
        if self.resolution != NATIVE_RESOLUTION:
            x = F.interpolate(x, size=(self.resolution,) * 2, mode="bilinear", align_corners=False, antialias=True)
        return x

    def _draw(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """Digit indices [N, 3], drawn where `generator` lives (on the GPU with the digits: no copy per step)."""
        return torch.randint(len(self.digits), (batch_size, 3), generator=generator, device=generator.device)

    def sample_with_modes(self, batch_size: int, generator: torch.Generator):
        """(images [N, 3, r, r] in [-1, 1], modes int64 [N] = 100*d_R + 10*d_G + d_B)."""
        index = self._draw(batch_size, generator)
        return self.to_images(self.digits[index.to(self.digits.device)]), metrics.modes_from_digits(self.labels[index.cpu()])

    def sample(self, batch_size: int, generator: torch.Generator):
        """Training batches: images only (the modes would need the indices on the host)."""
        index = self._draw(batch_size, generator)
        return self.to_images(self.digits[index.to(self.digits.device)]), None

    def evaluate(self, generate, n: int = EVAL_SAMPLES) -> dict:
        """Mode count, reverse KL to uniform, modes with >= MIN_MODE_COUNT samples, classifier accuracy, and
        `fd_mnist_classifier`: the Frechet distance to n real samples in the mode classifier's feature
        space (a FID-like number at CPU scale; never to be read as Inception FID).

        Streams (roadmap/evaluation.py): blocks of EVAL_BLOCK samples are generated, classified and gated on
        the device they are made on, shared by the ranks; what stays is a few numbers per sample (mode,
        verdict) and the running moments of the classifier features (roadmap/moments.py), not the features.
        Returns {} on a rank other than 0 (rank 0 collects the scores)."""
        from roadmap.evaluation import map_blocks
        from stackedmnist.classifier import load_classifier

        model = load_classifier(self.root)
        gate = self.quality_gate(model)
        blocks = map_blocks(generate, n, EVAL_BLOCK, lambda samples: _score_block(samples, model, gate))
        if blocks is None:
            return {}
        modes, recognisable, fake = [], [], FeatureMoments()
        for block_modes, block_recognisable, block_features in blocks:
            modes.append(block_modes)
            recognisable.append(block_recognisable)
            fake.add(block_features)
        modes, recognisable = torch.cat(modes), torch.cat(recognisable)
        distance = distance_of_gaussians(fake.mean_and_covariance(), self._real_gaussian(n, model))
        return dict(metrics.stacked_mnist_metrics(modes), **metrics.recognisable_metrics(modes, recognisable),
                    classifier_accuracy=model.test_accuracy, fd_mnist_classifier=distance)

    def quality_gate(self, model):
        """The sample-quality gate (stackedmnist/quality.py) fit on real samples at this resolution (once per object)."""
        from stackedmnist.classifier import classify_with_confidence
        from stackedmnist.quality import CALIBRATION_SAMPLES, CALIBRATION_SEED, REFERENCE_SAMPLES, REFERENCE_SEED, fit_gate

        if "gate" not in self._real_feature_cache:
            reference, _ = self.sample_with_modes(REFERENCE_SAMPLES, torch.Generator().manual_seed(REFERENCE_SEED))
            calibration, _ = self.sample_with_modes(CALIBRATION_SAMPLES, torch.Generator().manual_seed(CALIBRATION_SEED))
            reference, calibration = reference.cpu(), calibration.cpu()
            self._real_feature_cache["gate"] = fit_gate(reference, calibration, classify_with_confidence(calibration, model)[1])
        return self._real_feature_cache["gate"]

    def _real_gaussian(self, n: int, model) -> tuple:
        """(mean, covariance) of the classifier features of n real samples drawn with a fixed seed, featurised a block
        at a time; computed once per n and kept as the Gaussian, not the n features."""
        from stackedmnist.classifier import classifier_on, features

        if n not in self._real_feature_cache:
            blocks = RealSamples(self, REAL_FEATURE_SEED).blocks(n, EVAL_BLOCK)
            self._real_feature_cache[n] = moments_of(features(images, classifier_on(model, images.device)) for images in blocks)
        return self._real_feature_cache[n]

    def to(self, device):
        """Keep the digits on `device` so that batches are assembled there (from indices drawn there too, when
        the data generator is on the device, as the trainer makes it)."""
        self.digits = self.digits.to(device)
        return self

    def save_samples(self, samples: torch.Tensor, path) -> None:
        """An image grid PNG of samples [N, 3, r, r] in [-1, 1], written atomically."""
        from roadmap.images import save_image_grid

        save_image_grid(samples, path)


class RealSamples:
    """Real samples of `data` from a fixed seed, in place of a generator's: called with n, n samples drawn at once;
    `blocks(n, size)` the same samples a block at a time (torch draws a block's indices as the next ones of one
    draw of n), for `map_blocks` (roadmap/evaluation.py) in one process."""

    rank, world = 0, 1

    def __init__(self, data: StackedMNIST, seed: int):
        self.data, self.seed = data, seed

    def __call__(self, n: int) -> torch.Tensor:
        return self.data.sample(n, torch.Generator().manual_seed(self.seed))[0]

    def blocks(self, n: int, size: int):
        generator = torch.Generator().manual_seed(self.seed)
        for start in range(0, n, size):
            yield self.data.sample(min(size, n - start), generator)[0]


def _score_block(samples, model, gate) -> tuple:
    """(modes int64 [N], recognisable bool [N], classifier features [N, 384]) on the host, of samples [N, 3, r, r]
    scored on their own device."""
    from stackedmnist.classifier import classifier_on, classify_with_confidence, features
    from stackedmnist.quality import channel_tests

    model = classifier_on(model, samples.device)
    digits, confidence = classify_with_confidence(samples, model)
    recognisable = channel_tests(samples, confidence, gate).all(1)
    return metrics.modes_from_digits(digits).cpu(), recognisable.cpu(), features(samples, model).cpu()


@register_dataset("stackedmnist", check=check_options, kind="stackedmnist")
def stacked_mnist(*, root: Optional[str] = None, resolution: int = NATIVE_RESOLUTION) -> StackedMNIST:
    """Stacked MNIST, 1000 modes; root from `root` or $R3BENCH_DATA; `resolution` 32 (paper) or smaller."""
    return StackedMNIST(root, resolution)
