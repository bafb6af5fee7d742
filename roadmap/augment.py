"""StyleGAN2-ADA 'bgc' augmentation (Karras et al. 2020, App. B) at a caller-given p, as R3GAN uses it (Table 9).

Every transform of 'blit' (x-flip, 90-degree rotation, integer translation), 'geom' (isotropic
scale, pre-rotation, anisotropic scale, post-rotation, fractional translation) and 'color'
(brightness, contrast, luma flip, hue rotation, saturation) is applied to each sample
independently with probability `strength * p`, drawn from the distributions of the paper and
the official training/augment.py with its default strengths (`BGC`). R3GAN ramps p with a cosine
over the burn-in (roadmap.schedules.cosine_ramp); there is no adaptive controller here.

Blit and geom compose into one 3x3 matrix per sample (output pixel -> input pixel, centered
pixel coordinates) and the batch is resampled once; color composes into one 4x4 matrix acting
on homogeneous RGB. Difference from the official code: it pads by reflection, upsamples 2x with
a symmetric wavelet filter, resamples and downsamples again to suppress aliasing; we resample
once with bilinear `grid_sample` and `padding_mode="reflection"` (mirror about the image edge,
the edge pixel repeated, where the official pad excludes it). That is sharper but slightly more
aliased for fractional transforms. The sampling grid is built in float64 from exact pixel
centers (not affine_grid), so blit-only matrices land exactly on pixel centers and flips,
quarter turns and integer shifts are bit-exact for power-of-two sizes (whose centers are exact
binary fractions in grid_sample's normalized coordinates); other sizes are exact to an ulp.

Constants (matrix entries, the pixel grid, the luma axis) are made once per device, size and dtype
and kept: built from Python numbers on every call, each would be a blocking host-to-device copy on
a GPU (four augment calls a step); a step then only launches kernels.
"""
import functools
import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Strengths:
    """Per-transform probability multipliers and magnitudes (official names and defaults)."""
    xflip: float = 1.0
    rotate90: float = 1.0
    xint: float = 1.0
    xint_max: float = 0.125  # max integer translation, fraction of the image size
    scale: float = 1.0
    rotate: float = 1.0
    aniso: float = 1.0
    xfrac: float = 1.0
    scale_std: float = 0.2  # log2 std of the isotropic scale
    rotate_max: float = 1.0  # max rotation, fraction of a half turn (pi)
    aniso_std: float = 0.2  # log2 std of the anisotropic scale
    xfrac_std: float = 0.125  # std of the fractional translation, fraction of the image size
    brightness: float = 1.0
    contrast: float = 1.0
    lumaflip: float = 1.0
    hue: float = 1.0
    saturation: float = 1.0
    brightness_std: float = 0.2  # additive offset in [-1, 1] image units
    contrast_std: float = 0.5  # log2 std of the contrast factor
    hue_max: float = 1.0  # max hue rotation, fraction of a half turn
    saturation_std: float = 1.0  # log2 std of the saturation factor


BGC = Strengths()


class _Draw:
    """Random draws for one batch, all through `generator` on `device`, so a seed reproduces them."""

    def __init__(self, n: int, generator: Optional[torch.Generator], device: torch.device):
        self.n, self.generator, self.device = n, generator, device

    def uniform(self) -> torch.Tensor:
        return torch.rand(self.n, generator=self.generator, device=self.device, dtype=torch.float64)

    def normal(self) -> torch.Tensor:
        return torch.randn(self.n, generator=self.generator, device=self.device, dtype=torch.float64)

    def gate(self, value: torch.Tensor, probability: float, neutral: float) -> torch.Tensor:
        """`value` where a fresh uniform draw falls below `probability`, else the no-op `neutral`."""
        return torch.where(self.uniform() < probability, value, torch.full_like(value, neutral))


@functools.lru_cache(maxsize=None)
def _constant_of(bits: str, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(float.fromhex(bits), dtype=torch.float64, device=device)


def _constant(value: float, device: torch.device) -> torch.Tensor:
    """A float64 0-d tensor holding `value` on `device`, made once (the same bits as torch.as_tensor(value));
    keyed by the exact bits, since 0.0 == -0.0 would share a cache entry."""
    return _constant_of(float(value).hex(), device)


@functools.lru_cache(maxsize=None)
def _vector(values: tuple, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """torch.tensor(values) on `device`, made once."""
    return torch.tensor(values, device=device, dtype=dtype)


@functools.lru_cache(maxsize=None)
def _pixel_centers(height: int, width: int, device: torch.device) -> torch.Tensor:
    """[H*W, 3] homogeneous output pixel centers in centered coordinates (float64), made once."""
    ys = torch.arange(height, dtype=torch.float64, device=device) - (height - 1) / 2
    xs = torch.arange(width, dtype=torch.float64, device=device) - (width - 1) / 2
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy, torch.ones_like(xx)], -1).reshape(-1, 3)


@functools.lru_cache(maxsize=None)
def _luma_axis(device: torch.device) -> tuple:
    """(identity 4x4, gray axis v, v v^T, the cross-product matrix of v) in float64 on `device`, made once."""
    eye = torch.eye(4, dtype=torch.float64, device=device)
    v = torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64, device=device) / math.sqrt(3)
    cross = _matrix([[0, -v[2], v[1], 0], [v[2], 0, -v[0], 0], [-v[1], v[0], 0, 0], [0, 0, 0, 0]], 1, device)
    return eye, v, torch.outer(v, v), cross


def _matrix(rows, n: int, device) -> torch.Tensor:
    """[n, k, k] matrices from a k x k nested list of scalars or [n] tensors."""
    return torch.stack([torch.stack([(v if isinstance(v, torch.Tensor) else _constant(v, device))
                                     .to(dtype=torch.float64, device=device).expand(n)
                                     for v in row], -1) for row in rows], -2)


def _translate(tx, ty, n, device):
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], n, device)


def _scale(sx, sy, n, device):
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], n, device)


def _rotate(theta, n, device, exact=False):
    c, s = torch.cos(theta), torch.sin(theta)
    if exact:
        c, s = c.round(), s.round()
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], n, device)


def draw_geometry(n: int, p: float, height: int, width: int, generator: Optional[torch.Generator] = None,
                  device=None, strengths: Strengths = BGC) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """Blit + geom for n samples: ([n, 3, 3] float64 matrix mapping output to input pixel
    coordinates centered on the image, {name: [n] or [n, 2] forward parameter, neutral if not drawn})."""
    device = torch.device(device if device is not None else "cpu")
    d, s = _Draw(n, generator, device), strengths
    pi = math.pi
    par = {}
    # Each forward transform T is appended as G = G @ T^-1, so G maps output -> input; later
    # transforms act first on the output grid, i.e. they are applied last to the image.
    par["xflip"] = d.gate(torch.floor(d.uniform() * 2), s.xflip * p, 0.0)
    G = _scale(1 - 2 * par["xflip"], 1.0, n, device)
    # Quarter turns counterclockwise as displayed (torch.rot90's sense); cos and sin are rounded
    # so the matrix is exactly integer and the blit exact.
    par["rotate90"] = d.gate(torch.floor(d.uniform() * 4), s.rotate90 * p, 0.0)
    G = G @ _rotate(pi / 2 * par["rotate90"], n, device, exact=True)
    gate = d.uniform() < s.xint * p
    t = torch.stack([(d.uniform() * 2 - 1), (d.uniform() * 2 - 1)], -1) * s.xint_max
    par["xint"] = torch.where(gate[:, None], torch.round(t * _vector((width, height), device, t.dtype)), 0.0)
    G = G @ _translate(-par["xint"][:, 0], -par["xint"][:, 1], n, device)
    par["scale"] = d.gate(torch.exp2(d.normal() * s.scale_std), s.scale * p, 1.0)
    G = G @ _scale(1 / par["scale"], 1 / par["scale"], n, device)
    # Two rotations, each with probability 1 - sqrt(1 - rotate * p), so that at least one
    # happens with probability rotate * p (the paper's reason: the pair covers anisotropic
    # scaling along an arbitrary axis).
    p_rot = 1 - math.sqrt(min(max(1 - s.rotate * p, 0.0), 1.0))
    par["rotate_pre"] = d.gate((d.uniform() * 2 - 1) * pi * s.rotate_max, p_rot, 0.0)
    G = G @ _rotate(-par["rotate_pre"], n, device)
    par["aniso"] = d.gate(torch.exp2(d.normal() * s.aniso_std), s.aniso * p, 1.0)
    G = G @ _scale(1 / par["aniso"], par["aniso"], n, device)
    par["rotate_post"] = d.gate((d.uniform() * 2 - 1) * pi * s.rotate_max, p_rot, 0.0)
    G = G @ _rotate(-par["rotate_post"], n, device)
    gate = d.uniform() < s.xfrac * p
    t = torch.stack([d.normal(), d.normal()], -1) * s.xfrac_std
    par["xfrac"] = torch.where(gate[:, None], t * _vector((width, height), device, t.dtype), 0.0)
    G = G @ _translate(-par["xfrac"][:, 0], -par["xfrac"][:, 1], n, device)
    return G, par


def draw_color(n: int, p: float, generator: Optional[torch.Generator] = None, device=None,
               strengths: Strengths = BGC, channels: int = 3) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """Color for n samples: ([n, 4, 4] float64 matrix on homogeneous RGB, {name: [n] parameter}).
    Hue and saturation need color, so they stay neutral when channels == 1 (as officially)."""
    device = torch.device(device if device is not None else "cpu")
    d, s = _Draw(n, generator, device), strengths
    eye, v, vv, cross = _luma_axis(device)  # v: the luma (gray) axis
    par = {}
    par["brightness"] = d.gate(d.normal() * s.brightness_std, s.brightness * p, 0.0)
    b = par["brightness"]
    C = _matrix([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]], n, device)
    par["contrast"] = d.gate(torch.exp2(d.normal() * s.contrast_std), s.contrast * p, 1.0)
    c = par["contrast"]
    C = _matrix([[c, 0, 0, 0], [0, c, 0, 0], [0, 0, c, 0], [0, 0, 0, 1]], n, device) @ C
    # Luma flip: Householder reflection through the plane orthogonal to the gray axis.
    par["lumaflip"] = d.gate(torch.floor(d.uniform() * 2), s.lumaflip * p, 0.0)
    C = (eye - 2 * vv * par["lumaflip"][:, None, None]) @ C
    hue_on, sat_on = (s.hue * p, s.saturation * p) if channels > 1 else (0.0, 0.0)
    par["hue"] = d.gate((d.uniform() * 2 - 1) * math.pi * s.hue_max, hue_on, 0.0)
    # Rodrigues rotation by the hue angle about the gray axis (4x4, the offset column untouched).
    cos, sin = torch.cos(par["hue"])[:, None, None], torch.sin(par["hue"])[:, None, None]
    rot = cos * (eye - vv) + sin * cross + vv
    rot[:, 3, 3] = 1.0
    C = rot @ C
    par["saturation"] = d.gate(torch.exp2(d.normal() * s.saturation_std), sat_on, 1.0)
    C = (vv + (eye - vv) * par["saturation"][:, None, None]) @ C
    return C, par


def augment(images: torch.Tensor, p: float, generator: Optional[torch.Generator] = None,
            strengths: Strengths = BGC) -> torch.Tensor:
    """'bgc' augmentation of images [N, C, H, W] (C = 3, or 1 for luma-only) in [-1, 1]; each
    transform hits each sample with probability strength * p. Differentiable w.r.t. `images`;
    p = 0 returns `images` itself (no resampling, bitwise identical)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"augment: p must be in [0, 1], got {p}")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"augment: expected [N, 1 or 3, H, W] images, got shape {tuple(images.shape)}")
    if p == 0:
        return images
    n, channels, height, width = images.shape
    G, _ = draw_geometry(n, p, height, width, generator, images.device, strengths)
    # Our own grid rather than affine_grid (whose linspace base is off by an ulp): output pixel
    # centers in centered coordinates, mapped by G in float64, then scaled to grid_sample's
    # normalized coordinates (align_corners=False: edges at -1 and +1, one pixel = 2 / size).
    points = _pixel_centers(height, width, images.device)  # [H*W, 3]
    source = (points @ G[:, :2, :].transpose(1, 2)).reshape(n, height, width, 2)
    grid = source * _vector((2 / width, 2 / height), images.device, torch.float64)
    grid = grid.to(images.dtype)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    C, _ = draw_color(n, p, generator, images.device, strengths, channels)
    C = C.to(images.dtype)
    flat = images.reshape(n, channels, height * width)
    if channels == 3:
        flat = C[:, :3, :3] @ flat + C[:, :3, 3:]
    else:  # luma-only: the mean RGB row of C acting on a gray pixel (r = g = b), as officially
        row = C[:, :3, :].mean(dim=1, keepdim=True)
        flat = flat * row[:, :, :3].sum(dim=2, keepdim=True) + row[:, :, 3:]
    return flat.reshape(n, channels, height, width)
