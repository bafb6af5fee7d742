"""Burn-in schedules "a -> b" of Table 9 (cosine from a to b over the burn-in, then held) and G's EMA."""
import math
from typing import Union

Ramp = Union[float, list]  # a constant, or [start, end] annealed over the burn-in


def cosine_ramp(value: Ramp, nimg: float, burn_in_nimg: float) -> float:
    """Value of a ramp after `nimg` images: cosine from start to end over the burn-in, then end."""
    if not isinstance(value, (list, tuple)):
        return float(value)
    start, end = (float(v) for v in value)
    if burn_in_nimg <= 0:
        return end
    progress = min(max(nimg / burn_in_nimg, 0.0), 1.0)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def ema_beta(batch_size: int, half_life_nimg: float) -> float:
    """EMA decay per step, beta = 0.5 ** (batch / half_life): the weight of the past halves every
    `half_life_nimg` images. A half-life of 0 copies the generator (beta = 0)."""
    if half_life_nimg <= 0:
        return 0.0
    return 0.5 ** (batch_size / half_life_nimg)
