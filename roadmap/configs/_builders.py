"""The three private builders behind Table 2's rows: StyleGAN2 (A), stripped StyleGAN2 (B, C1, C), modern ResNet (D1..E).

`preset` is the Table 9 column whose architecture a row builds (resolution, widths, groups, classes):
the run's own `preset` (RunConfig) unless model_args names another (roadmap.config.inherit_preset),
else the row's default (ffhq256; E: stackedmnist, kept so that committed numbers stay).
Every channel count is derived from the preset's Config A widths (`stylegan2_channels`, Table 9
order, highest resolution first) with Table 2's ratios, then multiplied by `width`:
- plain channel counts: round(c * width), at least 1;
- the width of a grouped 3x3 conv (E1, E): rounded to a multiple of the group size (at least one
  group), so the group size is kept and the number of groups scales with the width. The group
  size is 16 (paper) for E1; for E it is read from Table 9's groups column (3x3 width / groups:
  16, except 32 on ImageNet, where the official code keeps 96 groups at twice the width).
Nothing else about the architecture depends on `width`.

Options of the modern ResNet (D1..E) for the Appendix E negative results and CPU-sized runs; each
default reproduces the paper's network exactly (same modules, same parameter counts):
- `activation` (lrelu | gelu | silu | smu) and `normalization` (none | group): see networks/resnet.py;
- `resolution` (every row, A..E): None = the preset's; a smaller power of two keeps the preset's
  lowest-resolution stages (e.g. 16 px on the stackedmnist preset: its 16, 8 and 4 px stages);
- `low_precision_stages`: None = the preset's count, capped so that the 4x4 stage stays fp32
  (as in every preset at its own resolution);
- `precision_events`: count overflow/NaN events per step (networks/precision.py); off unless asked
  (the `precision` experiment asks): each count is a blocking host read, ~180 per bf16 E step, which
  would stall a GPU at every stage crossing. The counts reach metrics.jsonl through ModelPair.step_statistics.
"""
import functools
import inspect
import math
from typing import Optional, Union

import torch

from roadmap.errors import ConfigError, check_int, unknown
from roadmap.networks.layers import check_width, precision_dtype, scale_channels, scale_grouped
from roadmap.networks.precision import PrecisionMonitor
from roadmap.networks.resnet import ResNetDiscriminator, ResNetGenerator
from roadmap.networks.stylegan2 import ResidualDiscriminator, StrippedGenerator, StyleGAN2Generator
from roadmap.presets import NUM_CLASSES, PRESETS
from roadmap.registry import ModelPair

GAN_R1 = dict(loss="gan", penalties=["r1"], lazy_interval=1)
RPGAN_R1 = dict(loss="rpgan", penalties=["r1"], lazy_interval=1)
RPGAN_R1_R2 = dict(loss="rpgan", penalties=["r1", "r2"], lazy_interval=1)


def preset_row(preset: str) -> dict:
    if preset not in PRESETS:
        raise unknown("preset", preset, PRESETS)
    return PRESETS[preset]


def row(private, **defaults):
    """Decorator declaring a Table 2 row over `private` (whose options are all keyword-only): the row's
    signature is the private builder's with the row's `defaults`, so it is the one list of what the row
    accepts (roadmap.registry.create_model refuses any other keyword with the closest name). The
    decorated function gives the row its name and docstring; an empty description is the docstring's first line."""
    signature = inspect.signature(private)

    def decorate(declaration):
        parameters = [p.replace(default=defaults[p.name]) if p.name in defaults else p for p in signature.parameters.values()]
        row_signature = signature.replace(parameters=parameters)

        @functools.wraps(declaration)
        def build(**options) -> ModelPair:
            bound = row_signature.bind(**options)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            arguments["description"] = arguments["description"] or declaration.__doc__.splitlines()[0]
            return private(**arguments)

        build.__signature__ = row_signature  # inspect.signature(row) reads this, not `build(**options)`
        return build

    return decorate


def _positive_int(field: str, value) -> None:
    check_int(field, value, 1)


def _common(preset, width, precision, conditional):
    row = preset_row(preset)
    width = check_width(width)
    dtype = precision_dtype(precision)
    conditional = row["conditional"] if conditional is None else bool(conditional)
    num_classes = NUM_CLASSES.get(preset, 0) if conditional else 0
    if conditional and not num_classes:
        raise ConfigError(f"conditional: preset {preset!r} has no class labels")
    return row, width, dtype, num_classes


# ----------------------------------------------------------------------------------------------
# Config A: StyleGAN2 with path length regularization.

def path_length_penalty(generator, z, labels, weight: float = 2.0, decay: float = 0.01, batch_shrink: int = 2):
    """StyleGAN2's path length regularizer per sample [N / batch_shrink], already times `weight`:
    (|J_w^T y| - a)^2 with y ~ N(0, I) / sqrt(H W), a the running mean of the lengths (decay 0.01)."""
    n = max(1, z.shape[0] // batch_shrink)
    labels = None if labels is None else labels[:n]
    ws = generator.mapping(z[:n], labels).unsqueeze(1).repeat(1, generator.num_ws, 1)
    images = generator.synthesis(ws)
    # randn over the logical shape (not randn_like): the same draw whatever the memory format
    noise = torch.randn(images.shape, dtype=images.dtype, device=images.device) / math.sqrt(images.shape[2] * images.shape[3])
    (gradient,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
    lengths = gradient.square().sum(2).mean(1).sqrt()
    with torch.no_grad():
        generator.path_length_mean.lerp_(lengths.mean().to(generator.path_length_mean.dtype), decay)
    return (lengths - generator.path_length_mean).square() * weight


def _stylegan2(*, preset: str = "ffhq256", width: float = 1.0, precision: str = "fp32", z_dim: int = 512, w_dim: int = 512,
               mapping_layers: int = 8, mbstd_group: int = 8, mixing_probability: float = 0.9, conditional: Optional[bool] = None,
               loss: Optional[dict] = None, path_length_weight: float = 2.0, path_length_interval: int = 4, description: str = "",
               resolution: Optional[int] = None) -> ModelPair:
    row, width, dtype, num_classes = _common(preset, width, precision, conditional)
    for field, value, minimum in (("z_dim", z_dim, 1), ("w_dim", w_dim, 1), ("mapping_layers", mapping_layers, 1),
                                  ("mbstd_group", mbstd_group, 0), ("path_length_interval", path_length_interval, 1)):
        _positive_int(field, value) if minimum else check_int(field, value, 0)
    channels, stages = _stylegan2_stages(row, width, resolution)
    w_dim = scale_channels(w_dim, width)
    generator = StyleGAN2Generator(channels, z_dim, w_dim, mapping_layers, num_classes, mixing_probability, stages, dtype)
    generator.register_buffer("path_length_mean", torch.zeros([]))
    discriminator = ResidualDiscriminator(channels, equalized=True, mbstd_group=mbstd_group, num_classes=num_classes,
                                          low_precision_stages=stages, dtype=dtype)
    penalty = None
    if path_length_weight > 0:
        penalty = lambda G, z, labels: path_length_penalty(G, z, labels, weight=path_length_weight)  # noqa: E731
    return ModelPair(generator, discriminator, z_dim, loss_spec=dict(loss or dict(GAN_R1, lazy_interval=16)),
                     description=description, generator_penalty=penalty, generator_penalty_interval=path_length_interval)


# ----------------------------------------------------------------------------------------------
# Configs B, C1, C: stripped StyleGAN2.

def _stylegan2_stages(row: dict, width: float, resolution) -> tuple:
    """(channels per kept stage, low-precision stage count) of A..C; `resolution` as for the ResNet rows."""
    if resolution is None:
        return [scale_channels(c, width) for c in row["stylegan2_channels"]], row["low_precision_stages"]
    kept = row["stylegan2_channels"][_stage_slice(row, resolution)]
    return [scale_channels(c, width) for c in kept], min(row["low_precision_stages"], len(kept) - 1)


def _stripped(*, preset: str = "ffhq256", width: float = 1.0, precision: str = "fp32", latent_dim: int = 64,
              conditional: Optional[bool] = None, loss: Optional[dict] = None, description: str = "",
              resolution: Optional[int] = None) -> ModelPair:
    row, width, dtype, num_classes = _common(preset, width, precision, conditional)
    _positive_int("latent_dim", latent_dim)
    channels, stages = _stylegan2_stages(row, width, resolution)
    generator = StrippedGenerator(channels, latent_dim, num_classes, stages, dtype)
    discriminator = ResidualDiscriminator(channels, equalized=False, mbstd_group=0, num_classes=num_classes,
                                          low_precision_stages=stages, dtype=dtype)
    return ModelPair(generator, discriminator, latent_dim, loss_spec=dict(loss or GAN_R1), description=description)


# ----------------------------------------------------------------------------------------------
# Configs D1, D, E1, E: the modern ResNet.

def _stage_slice(row: dict, resolution) -> slice:
    """Which of the preset's stages (highest resolution first) a network at `resolution` keeps."""
    count = len(row["stylegan2_channels"])
    if resolution is None:
        return slice(0, count)
    valid = [4 * 2 ** i for i in range(1, count)]
    if resolution not in valid:
        raise ConfigError(f"resolution: expected one of {valid} (powers of two up to the preset's), got {resolution!r}")
    kept = int(math.log2(resolution)) - 1
    return slice(count - kept, count)


def _resnet(*, preset: str = "ffhq256", width: float = 1.0, precision: str = "fp32", stem_ratio: float, hidden_ratio: float,
            group_size: Union[int, str, None], output_skips: bool, blocks: int = 2, latent_dim: int = 64,
            conditional: Optional[bool] = None, loss: Optional[dict] = None, description: str = "", activation: str = "lrelu",
            normalization: str = "none", resolution: Optional[int] = None, low_precision_stages: Optional[int] = None,
            precision_events: Optional[bool] = None) -> ModelPair:
    """stem = stem_ratio x Config A width, hidden (3x3 conv width) = hidden_ratio x Config A width.

    group_size: None (dense 3x3), an int, or "preset" (hidden width at width 1 / Table 9 groups).
    """
    row, width, dtype, num_classes = _common(preset, width, precision, conditional)
    _positive_int("blocks", blocks)
    _positive_int("latent_dim", latent_dim)
    if group_size not in (None, "preset"):
        _positive_int("group_size", group_size)
    kept = _stage_slice(row, resolution)
    base, preset_groups = row["stylegan2_channels"][kept], row["groups"][kept]
    stems = [scale_channels(round(stem_ratio * c), width) for c in base]
    if group_size is not None:
        full = [round(hidden_ratio * c) for c in base]
        sizes = [h // g for h, g in zip(full, preset_groups)] if group_size == "preset" else [group_size] * len(base)
        if any(h % s for h, s in zip(full, sizes)):
            raise ConfigError(f"group_size: {group_size!r} does not divide the 3x3 conv widths {full}")
        hiddens = [scale_grouped(h, width, s) for h, s in zip(full, sizes)]
        groups = [h // s for h, s in zip(hiddens, sizes)]
    else:
        hiddens = [scale_channels(round(hidden_ratio * c), width) for c in base]
        groups = [1] * len(base)
    if low_precision_stages is None:
        low_precision_stages = min(row["low_precision_stages"], len(base) - 1)
    if isinstance(low_precision_stages, bool) or not isinstance(low_precision_stages, int) or not 0 <= low_precision_stages <= len(base):
        raise ConfigError(f"low_precision_stages: expected an integer in [0, {len(base)}], got {low_precision_stages!r}")
    if precision_events is not None and not isinstance(precision_events, bool):
        raise ConfigError(f"precision_events: expected true, false or null, got {precision_events!r}")
    monitor = PrecisionMonitor() if precision_events else None  # None: off
    ablation = dict(activation=activation, normalization=normalization, monitor=monitor)
    generator = ResNetGenerator(latent_dim, stems, hiddens, groups, blocks, num_classes, output_skips,
                                low_precision_stages, dtype, **ablation)
    discriminator = ResNetDiscriminator(stems, hiddens, groups, blocks, num_classes, low_precision_stages, dtype, **ablation)
    return ModelPair(generator, discriminator, latent_dim, loss_spec=dict(loss or RPGAN_R1_R2), description=description,
                     step_statistics=None if monitor is None else monitor.step_statistics)
