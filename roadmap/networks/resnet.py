"""The modernized ResNet G and D of configurations D1, D, E1 and E (paper Section 3, "ConvNeXt-ify").

Fully symmetric: each resolution stage is one transition layer and `blocks` residual blocks.
G runs stages from 4x4 upwards, D mirrors it downwards. Widths are given per stage from the
highest resolution to the lowest (Table 9 order) and are used as given (the width multiplier
is applied by the configuration builders). Fix-up initialization lives in `ResidualBlock.__init__`
(the one place weights of a block are initialized); the other layers use He init with gain 1.

Appendix E ablations (builder keywords, defaults = the paper's network): `activation` replaces the
two leaky ReLUs of every residual block (GELU, SiLU/Swish, SMU; same init), `normalization="group"`
adds a GroupNorm before each of them. `monitor` (a precision.PrecisionMonitor or None) counts
overflow/NaN events of every stage's activation and gradient and of D's logits.
"""
import torch
import torch.nn.functional as F
from torch import nn

from roadmap.networks.layers import (
    LEAKY_GAIN,
    BiasedActivation,
    Convolution,
    Downsample,
    Linear,
    Upsample,
    enter_precision,
    normalization_layer,
)


# Why a projection D cannot fold (networks/operators.py): the embedding is not on the path from the image to the
# logit, so the input-gradient pass that carries the folded adversarial gradient never reaches it.
PROJECTION_OFF_THE_IMAGE_PATH = "the projection embedding is off the image's path: the input-gradient pass never reaches it"


class ResidualBlock(nn.Module):
    """x + Conv1x1(stem->hidden) -> [GroupNorm] -> bias+act -> Conv3x3(hidden, groups) -> [GroupNorm] -> bias+act -> Conv1x1(hidden->stem).

    act is leaky ReLU(0.2) unless `activation` says otherwise; the GroupNorms are nn.Identity()
    unless `normalization="group"` (paper: no normalization). No convolution has a bias of its own;
    the biases sit before the two activations, so the last 1x1 conv has none (paper). Fix-up init:
    the last conv is zero (the block is the identity at init), the other two use He init scaled by
    L^-1/4, L = residual blocks in the whole network (the same init whatever the activation).
    """

    def __init__(self, stem: int, hidden: int, groups: int, total_blocks: int, activation: str = "lrelu",
                 normalization: str = "none"):
        super().__init__()
        gain = LEAKY_GAIN * total_blocks ** -0.25
        self.conv1 = Convolution(stem, hidden, 1, gain=gain)
        self.norm1 = normalization_layer(normalization, hidden)
        self.act1 = BiasedActivation(hidden, activation)
        self.conv2 = Convolution(hidden, hidden, 3, groups=groups, gain=gain)
        self.norm2 = normalization_layer(normalization, hidden)
        self.act2 = BiasedActivation(hidden, activation)
        self.conv3 = Convolution(hidden, stem, 1, gain=0.0)

    def forward(self, x):
        return x + self.conv3(self.act2(self.norm2(self.conv2(self.act1(self.norm1(self.conv1(x)))))))


class GenerativeBasis(nn.Module):
    """G's 4x4 transition: learnable 4x4 maps [C, 4, 4] modulated per channel by Linear(z) (no bias)."""

    def __init__(self, in_features: int, channels: int):
        super().__init__()
        self.basis = nn.Parameter(torch.randn(channels, 4, 4))
        self.linear = Linear(in_features, channels)

    def forward(self, z):
        return self.basis.to(z.dtype).unsqueeze(0) * self.linear(z)[:, :, None, None]


class ClassifierHead(nn.Module):
    """D's 4x4 transition: global 4x4 depthwise conv (no bias, no padding: the kernel covers the 4x4 map once)
    -> Linear(C -> out) (no bias)."""

    def __init__(self, channels: int, out_features: int):
        super().__init__()
        self.depthwise = Convolution(channels, channels, 4, groups=channels, padding=0)
        self.linear = Linear(channels, out_features)

    def forward(self, x):
        return self.linear(self.depthwise(x).flatten(1))


class UpTransition(nn.Module):
    """G's transition: optional Conv1x1 (channel change, no bias) -> bilinear 2x upsampling."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = Convolution(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        self.resample = Upsample()

    def forward(self, x):
        return self.resample(self.conv(x))


class DownTransition(nn.Module):
    """D's transition: bilinear 2x downsampling -> optional Conv1x1 (channel change, no bias)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.resample = Downsample()
        self.conv = Convolution(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x):
        return self.conv(self.resample(x))


class Stage(nn.Module):
    """One resolution stage: its layers in order, run in `dtype` (layers.enter_precision at entry and exit).

    With a `monitor`, the events of the tensors crossing the stage's boundaries are counted under
    `name`: `.in` (entering a low-precision stage), `.act` (leaving it) and `.grad` (the gradient
    arriving at its output, before autograd casts it through the format).
    """

    def __init__(self, layers: list, dtype: torch.dtype = torch.float32, name: str = "", monitor=None):
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.dtype = dtype
        self.name = name
        self.monitor = monitor
        if monitor is not None:
            for part in ((".in",) if dtype != torch.float32 else ()) + (".act", ".grad"):
                monitor.register(name + part)

    @property
    def fold_exception(self):
        """Why a D step cannot fold through this stage (networks/operators.py), or None."""
        if self.dtype != torch.float32:
            return f"runs in {self.dtype}: the skipped adversarial backward would have been rounded through the format"
        if self.monitor is not None:
            return "its event monitor counts the gradients of the adversarial backward that the fold skips"
        return None

    def forward(self, x):
        if self.monitor is None:
            return enter_precision(self.layers(enter_precision(x, self.dtype)), self.dtype)
        if self.dtype != torch.float32:
            self.monitor.count(self.name + ".in", x, self.dtype)
        y = self.layers(enter_precision(x, self.dtype))
        self.monitor.count(self.name + ".act", y, self.dtype)
        out = enter_precision(y, self.dtype)
        if out.requires_grad:
            out.register_hook(lambda grad: self.monitor.count(self.name + ".grad", grad, self.dtype))
        return out


def _stage_dtypes(count: int, low_precision_stages: int, dtype: torch.dtype) -> list:
    """dtype per stage listed from the highest resolution: the first `low_precision_stages` get `dtype`."""
    return [dtype if index < low_precision_stages else torch.float32 for index in range(count)]


class ResNetGenerator(nn.Module):
    """z [N, latent_dim] (+ labels [N]) -> images [N, 3, R, R] in fp32, no output nonlinearity.

    Layer order: [class embedding, concatenated to z] -> stage 4x4 (basis -> blocks) -> stage 8x8
    (transition -> blocks) -> ... -> Conv1x1 to RGB. With output skips (Config D1) every stage has
    its own Conv1x1 to RGB and the image is the sum of the upsampled per-stage images.
    """

    def __init__(self, latent_dim, stems, hiddens, groups, blocks, num_classes=0, output_skips=False,
                 low_precision_stages=0, dtype=torch.float32, activation="lrelu", normalization="none", monitor=None):
        super().__init__()
        stems, hiddens, groups = stems[::-1], hiddens[::-1], groups[::-1]  # low -> high resolution
        total_blocks = blocks * len(stems)
        dtypes = _stage_dtypes(len(stems), low_precision_stages, dtype)[::-1]
        self.embedding = Linear(num_classes, latent_dim) if num_classes else None
        self.num_classes = num_classes
        stages = []
        for index, (stem, hidden, group) in enumerate(zip(stems, hiddens, groups)):
            transition = (GenerativeBasis(latent_dim * (2 if num_classes else 1), stem) if index == 0
                          else UpTransition(stems[index - 1], stem))
            residual = [ResidualBlock(stem, hidden, group, total_blocks, activation, normalization) for _ in range(blocks)]
            stages.append(Stage([transition] + residual, dtypes[index], f"G.s{4 * 2 ** index}", monitor))
        self.stages = nn.ModuleList(stages)
        to_rgb_from = stems if output_skips else stems[-1:]
        self.to_rgb = nn.ModuleList(Convolution(stem, 3, 1) for stem in to_rgb_from)
        self.upsample = Upsample() if output_skips else None

    def forward(self, z, labels=None):
        x = z.float()
        if self.embedding is not None:
            x = torch.cat([x, self.embedding(F.one_hot(labels, self.num_classes).float())], dim=1)
        image = None
        first_rgb = len(self.stages) - len(self.to_rgb)
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index >= first_rgb:
                rgb = enter_precision(self.to_rgb[index - first_rgb](x), stage.dtype).float()
                image = rgb if image is None else self.upsample(image) + rgb
        return image


class ResNetDiscriminator(nn.Module):
    """images [N, 3, R, R] (+ labels [N]) -> logits [N] in fp32.

    Layer order: Conv1x1 from RGB -> stage R (blocks -> transition) -> ... -> stage 4x4 (blocks ->
    classifier head). Conditional: projection D, logit = <head output, embed(label)>.
    """

    def __init__(self, stems, hiddens, groups, blocks, num_classes=0, low_precision_stages=0, dtype=torch.float32,
                 activation="lrelu", normalization="none", monitor=None):
        super().__init__()
        total_blocks = blocks * len(stems)
        dtypes = _stage_dtypes(len(stems), low_precision_stages, dtype)
        self.from_rgb = Convolution(3, stems[0], 1)
        out_features = stems[-1] if num_classes else 1
        stages = []
        for index, (stem, hidden, group) in enumerate(zip(stems, hiddens, groups)):
            residual = [ResidualBlock(stem, hidden, group, total_blocks, activation, normalization) for _ in range(blocks)]
            transition = (DownTransition(stem, stems[index + 1]) if index + 1 < len(stems)
                          else ClassifierHead(stem, out_features))
            resolution = 4 * 2 ** (len(stems) - 1 - index)
            stages.append(Stage(residual + [transition], dtypes[index], f"D.s{resolution}", monitor))
        self.stages = nn.ModuleList(stages)
        # Projection embedding scaled so that the logit starts with unit-order variance.
        self.embedding = Linear(num_classes, out_features, gain=out_features ** -0.5) if num_classes else None
        if self.embedding is not None:
            self.embedding.fold_exception = PROJECTION_OFF_THE_IMAGE_PATH
        self.num_classes = num_classes
        self.monitor = monitor
        if monitor is not None:
            monitor.register("D.logits")

    def forward(self, x, labels=None):
        x = enter_precision(x.float(), self.stages[0].dtype)
        x = self.from_rgb(x)
        for stage in self.stages:
            x = stage(x)
        x = x.float()
        if self.embedding is not None:
            x = (x * self.embedding(F.one_hot(labels, self.num_classes).float())).sum(1, keepdim=True)
        if self.monitor is not None:
            self.monitor.count("D.logits", x)
        return x.squeeze(1)
