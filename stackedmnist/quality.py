"""The sample-quality gate for Stacked MNIST mode counts (paper Tables 1 and 3; issue 24): only recognisable digits count.

The paper's protocol (argmax of a digit classifier per channel) gives every sample a mode, so
pure colour noise from an untrained generator scored 482 modes here. A channel is recognisable
when it passes three tests, each calibrated on real Stacked MNIST at the data set's resolution
so that each rejects GATE_QUANTILE of real channels (measured: a real sample passes all three
on all three channels about 0.96 of the time):
- confident: the classifier's softmax probability of its argmax digit is at least the real
  channels' GATE_QUANTILE quantile (an unrecognisable blob gets a hesitant answer);
- near the data: the Euclidean distance in pixel space to the nearest of REFERENCE_SAMPLES real
  samples' channels is at most the real channels' (1 - GATE_QUANTILE) quantile (measured at
  16 px: uniform, smoothed and saturated noise are 3-8x farther than real digits, although the
  classifier is confident on 60-90% of uniform-noise channels);
- sharp: the largest absolute difference between neighbouring pixels is at least the real
  channels' GATE_QUANTILE quantile (measured at 16 px: real 1.01 at the 1% quantile, digits
  blurred with sigma 1-3 px 0.13-0.49, constant images 0).
A sample is recognisable when all three of its channels are. Thresholds and references come
from fixed seeds, so a score is reproducible.
"""
import dataclasses

import torch

GATE_QUANTILE = 0.005  # each test rejects this fraction of real channels (chosen on real data, stated above)
REFERENCE_SAMPLES = 2000  # real samples (x3 channels) that "near the data" measures against
CALIBRATION_SAMPLES = 2000  # other real samples that set the three thresholds
REFERENCE_SEED, CALIBRATION_SEED = 31_415, 27_182  # fixed, never a run's seed
_CHUNK = 4096  # channels per distance block (memory: chunk x reference channels floats)


@dataclasses.dataclass
class Gate:
    """Thresholds of the three tests and the reference channels [M, H*W] (fit with `fit_gate`)."""

    reference: torch.Tensor
    min_confidence: float
    max_distance: float
    min_sharpness: float


def nearest_distance(channels: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Channels [K, H*W] -> Euclidean distance to the nearest reference channel [M, H*W], float32 [K] (on the channels' device)."""
    reference = reference.float().to(channels.device)
    return torch.cat([torch.cdist(channels[i:i + _CHUNK].float(), reference).min(1).values
                      for i in range(0, len(channels), _CHUNK)]) if len(channels) else torch.zeros(0, device=channels.device)


def sharpness(images: torch.Tensor) -> torch.Tensor:
    """Images [N, C, H, W] in [-1, 1] -> largest |difference| between horizontally or vertically neighbouring pixels [N, C]."""
    x = images.float().clamp(-1, 1)
    across = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(2).amax(2)
    down = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(2).amax(2)
    return torch.maximum(across, down)


def channel_tests(images: torch.Tensor, confidence: torch.Tensor, gate: Gate) -> torch.Tensor:
    """Images [N, C, H, W] in [-1, 1] and the classifier's confidence [N, C] -> recognisable channels bool [N, C]."""
    n, c = images.shape[:2]
    distance = nearest_distance(images.float().clamp(-1, 1).reshape(n * c, -1), gate.reference).reshape(n, c)
    return (confidence >= gate.min_confidence) & (distance <= gate.max_distance) & (sharpness(images) >= gate.min_sharpness)


def fit_gate(real_images_reference: torch.Tensor, real_images_calibration: torch.Tensor, calibration_confidence: torch.Tensor,
             quantile: float = GATE_QUANTILE) -> Gate:
    """Thresholds from real samples: reference [M, C, H, W] and calibration [K, C, H, W] in [-1, 1], confidence [K, C]."""
    reference = real_images_reference.float().reshape(-1, real_images_reference[0, 0].numel())
    calibration = real_images_calibration.float()
    distance = nearest_distance(calibration.reshape(-1, reference.shape[1]), reference)
    return Gate(reference=reference,
                min_confidence=float(torch.quantile(calibration_confidence.flatten().float(), quantile)),
                max_distance=float(torch.quantile(distance, 1 - quantile)),
                min_sharpness=float(torch.quantile(sharpness(calibration).flatten(), quantile)))
