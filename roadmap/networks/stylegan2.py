"""StyleGAN2 (Config A) and the stripped StyleGAN2 (Config B/C) generators and residual discriminators (paper Section 3, Table 2).

Config A follows StyleGAN2-ADA's FFHQ-256 setting ("paper256": fmaps 0.5, 8 mapping layers,
w dim 512, minibatch stddev group 8): z normalization, mapping network (lr multiplier 0.01),
style injection through weight modulation/demodulation, per-layer noise, learned constant
input, toRGB output skips, equalized learning rate everywhere, style mixing (p = 0.9) while
training, and a residual D with minibatch stddev. One deliberate simplification that does not
change any parameter: resampling is the bilinear [1,3,3,1] filter applied before (G) or after
(D) a stride-1 3x3 conv, instead of StyleGAN2's fused transposed/strided convolutions.

Config B removes exactly Table 2's ten items and follows principles a-e: the 4x4 constant is
modulated by Linear(z), z dim 64 (no mapping, styles, noise, mod/demod, equalized lr, mbstd),
He-initialized weights, bias + leaky ReLU, bilinear resampling, no tanh; the G keeps its toRGB
output skips and D stays StyleGAN2's residual D (principle f).

Widths are given per resolution from the highest to the lowest (Table 9 order). Precision:
the `low_precision_stages` highest-resolution blocks of G and D run in `dtype` exactly like the
ResNet stages (layers.enter_precision at block entry and exit); everything else is fp32.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from roadmap.networks.layers import (
    LEAKY_GAIN,
    LEAKY_SLOPE,
    BiasedActivation,
    Convolution,
    Downsample,
    Linear,
    Upsample,
    enter_precision,
)
from roadmap.networks.resnet import PROJECTION_OFF_THE_IMAGE_PATH, GenerativeBasis, _stage_dtypes

SQRT2 = math.sqrt(2.0)


def _lrelu(x, gain: float = SQRT2):
    """StyleGAN2's activation: leaky ReLU(0.2) times sqrt(2) (equalized-lr networks only)."""
    return F.leaky_relu(x, LEAKY_SLOPE) * gain


EQUALIZED = "equalized learning rate: torch's own layers on a scaled weight, not the operators that fold"


class EqualizedLinear(nn.Module):
    """Linear layer with equalized learning rate: N(0, 1/lr_mult^2) weights scaled by lr_mult/sqrt(fan_in) at run time."""

    fold_exception = EQUALIZED

    def __init__(self, in_features, out_features, bias=True, lr_multiplier=1.0, bias_init=0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init) / lr_multiplier)) if bias else None
        self.weight_gain, self.lr_multiplier = lr_multiplier / math.sqrt(in_features), lr_multiplier

    def forward(self, x):
        bias = None if self.bias is None else (self.bias * self.lr_multiplier).to(x.dtype)
        return F.linear(x, (self.weight * self.weight_gain).to(x.dtype), bias)


class EqualizedConvolution(nn.Module):
    """Conv2d ('same' padding) with equalized learning rate; bias optional."""

    fold_exception = EQUALIZED

    def __init__(self, in_channels, out_channels, kernel_size, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain, self.padding = 1 / math.sqrt(in_channels * kernel_size**2), kernel_size // 2

    def forward(self, x):
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.conv2d(x, (self.weight * self.weight_gain).to(x.dtype), bias, padding=self.padding)


# ----------------------------------------------------------------------------------------------
# Config A generator.

class MappingNetwork(nn.Module):
    """z [N, z_dim] (+ labels) -> w [N, w_dim]. Order: normalize z (2nd moment) [concat normalized
    embed(label)] -> 8 x (equalized FC -> lrelu*sqrt2), lr multiplier 0.01."""

    def __init__(self, z_dim=512, w_dim=512, layers=8, num_classes=0, lr_multiplier=0.01):
        super().__init__()
        self.embedding = EqualizedLinear(num_classes, w_dim) if num_classes else None
        self.num_classes = num_classes
        features = [z_dim + (w_dim if num_classes else 0)] + [w_dim] * layers
        self.layers = nn.ModuleList(EqualizedLinear(a, b, lr_multiplier=lr_multiplier) for a, b in zip(features[:-1], features[1:]))

    @staticmethod
    def _normalize(x):
        return x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()

    def forward(self, z, labels=None):
        x = self._normalize(z.float())
        if self.embedding is not None:
            x = torch.cat([x, self._normalize(self.embedding(F.one_hot(labels, self.num_classes).float()))], 1)
        for layer in self.layers:
            x = _lrelu(layer(x))
        return x


def modulated_conv2d(x, weight, styles, demodulate: bool, padding: int):
    """StyleGAN2 weight (de)modulation as one grouped conv: x [N,I,H,W], weight [O,I,k,k], styles [N,I]."""
    n, in_channels, height, width = x.shape
    w = weight.unsqueeze(0) * styles.view(n, 1, -1, 1, 1)  # [N, O, I, k, k]
    if demodulate:
        w = w * (w.square().sum([2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    out = F.conv2d(x.reshape(1, n * in_channels, height, width), w.reshape(-1, in_channels, *weight.shape[2:]), padding=padding, groups=n)
    return out.view(n, -1, *out.shape[2:])


class SynthesisLayer(nn.Module):
    """[bilinear 2x up] -> modulated 3x3 conv (style = affine(w), demodulated) -> + noise * strength -> + bias -> lrelu*sqrt2."""

    def __init__(self, in_channels, out_channels, w_dim, up: bool):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.upsample = Upsample() if up else nn.Identity()
        self.weight_gain = 1 / math.sqrt(in_channels * 9)

    def forward(self, x, w):
        x = self.upsample(x)
        styles = self.affine(w.to(x.dtype)) * self.weight_gain
        x = modulated_conv2d(x, self.weight.to(x.dtype), styles, demodulate=True, padding=1)
        noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        x = x + noise * self.noise_strength.to(x.dtype)
        return _lrelu(x + self.bias.to(x.dtype).view(1, -1, 1, 1))


class ToRGB(nn.Module):
    """Modulated 1x1 conv to RGB without demodulation, + bias (StyleGAN2's output skip branch)."""

    def __init__(self, in_channels, w_dim):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(3, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(3))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x, w):
        styles = self.affine(w.to(x.dtype)) * self.weight_gain
        x = modulated_conv2d(x, self.weight.to(x.dtype), styles, demodulate=False, padding=0)
        return x + self.bias.to(x.dtype).view(1, -1, 1, 1)


class SynthesisBlock(nn.Module):
    """One resolution: [const 4x4 | conv0 (up)] -> conv1 -> toRGB; image = upsample(image) + toRGB (output skips)."""

    def __init__(self, in_channels, out_channels, w_dim, first: bool, dtype=torch.float32):
        super().__init__()
        self.const = nn.Parameter(torch.randn(out_channels, 4, 4)) if first else None
        self.conv0 = None if first else SynthesisLayer(in_channels, out_channels, w_dim, up=True)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, up=False)
        self.to_rgb = ToRGB(out_channels, w_dim)
        self.upsample = None if first else Upsample()
        self.num_ws = 2 if first else 3  # ws consumed: conv0?, conv1, toRGB (toRGB shares the next block's first w)
        self.dtype = dtype

    def forward(self, x, image, ws):
        if self.const is not None:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            ws_iter = iter([ws[:, 0], ws[:, 1]])
        else:
            ws_iter = iter([ws[:, 0], ws[:, 1], ws[:, 2]])
        x = enter_precision(x, self.dtype)
        if self.conv0 is not None:
            x = self.conv0(x, next(ws_iter))
        x = self.conv1(x, next(ws_iter))
        rgb = enter_precision(self.to_rgb(x, next(ws_iter)), self.dtype).float()
        image = rgb if image is None else self.upsample(image) + rgb
        return enter_precision(x, self.dtype), image


class StyleGAN2Generator(nn.Module):
    """z [N, 512] (+ labels) -> images [N, 3, R, R]: mapping network -> w broadcast (mixed while training) -> synthesis."""

    def __init__(self, channels, z_dim=512, w_dim=512, mapping_layers=8, num_classes=0, mixing_probability=0.9,
                 low_precision_stages=0, dtype=torch.float32):
        super().__init__()
        channels = channels[::-1]  # low -> high resolution
        dtypes = _stage_dtypes(len(channels), low_precision_stages, dtype)[::-1]
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, num_classes)
        self.blocks = nn.ModuleList(
            SynthesisBlock(channels[max(index - 1, 0)], channels[index], w_dim, first=index == 0, dtype=dtypes[index])
            for index in range(len(channels))
        )
        self.num_ws = 2 * len(channels)  # StyleGAN2: one w per conv layer plus the last toRGB's
        self.mixing_probability = mixing_probability

    def synthesis(self, ws):
        """ws [N, num_ws, w_dim] -> images [N, 3, R, R] fp32."""
        x, image, index = None, None, 0
        for block in self.blocks:
            x, image = block(x, image, ws[:, index:index + block.num_ws])
            index += block.num_ws - 1  # the toRGB w is the next block's first conv w
        return image

    def forward(self, z, labels=None):
        ws = self.mapping(z, labels).unsqueeze(1).repeat(1, self.num_ws, 1)
        if self.training and self.mixing_probability > 0 and torch.rand([]) < self.mixing_probability:
            # Mixing regularization: from a random layer on, styles come from a second latent.
            cutoff = int(torch.randint(1, self.num_ws, []))
            ws[:, cutoff:] = self.mapping(torch.randn_like(z), labels).unsqueeze(1)
        return self.synthesis(ws)


# ----------------------------------------------------------------------------------------------
# Config B generator.

class StrippedGenerator(nn.Module):
    """z [N, 64] (+ labels) -> images: 4x4 basis (constant modulated by Linear(z)) -> conv3x3 -> toRGB,
    then per resolution: bilinear up -> conv3x3 -> bias+LReLU -> conv3x3 -> bias+LReLU -> toRGB (1x1 + bias),
    image = upsample(image) + toRGB (output skips)."""

    def __init__(self, channels, latent_dim=64, num_classes=0, low_precision_stages=0, dtype=torch.float32):
        super().__init__()
        channels = channels[::-1]
        dtypes = _stage_dtypes(len(channels), low_precision_stages, dtype)[::-1]
        self.embedding = Linear(num_classes, latent_dim) if num_classes else None
        self.num_classes = num_classes
        self.basis = GenerativeBasis(latent_dim * (2 if num_classes else 1), channels[0])
        blocks = []
        for index, out_channels in enumerate(channels):
            in_channels = channels[max(index - 1, 0)]
            layers = [] if index == 0 else [Upsample(), Convolution(in_channels, out_channels, 3, gain=LEAKY_GAIN), BiasedActivation(out_channels)]
            layers += [Convolution(out_channels, out_channels, 3, gain=LEAKY_GAIN), BiasedActivation(out_channels)]
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = nn.ModuleList(Convolution(c, 3, 1, bias=True) for c in channels)
        self.upsample = Upsample()
        self.dtypes = dtypes

    def forward(self, z, labels=None):
        x = z.float()
        if self.embedding is not None:
            x = torch.cat([x, self.embedding(F.one_hot(labels, self.num_classes).float())], dim=1)
        x, image = self.basis(x), None
        for block, to_rgb, dtype in zip(self.blocks, self.to_rgb, self.dtypes):
            x = enter_precision(block(enter_precision(x, dtype)), dtype)
            rgb = enter_precision(to_rgb(x), dtype).float()
            image = rgb if image is None else self.upsample(image) + rgb
        return image


# ----------------------------------------------------------------------------------------------
# Residual discriminators (A: equalized lr + minibatch stddev; B: He init, neither).

class MinibatchStddev(nn.Module):
    """Appends one channel: the mean over features of the per-group std across the minibatch (group <= 8)."""

    fold_exception = "mixes the samples of a group: the adversarial gradient no longer factors per sample"

    def __init__(self, group_size=8):
        super().__init__()
        self.group_size = group_size

    def forward(self, x):
        n, c, h, w = x.shape
        group = min(self.group_size, n)
        while n % group:  # StyleGAN2 needs a divisor of the batch; take the largest one <= group_size
            group -= 1
        y = x.float().reshape(group, -1, c, h, w)
        y = (y.var(0, unbiased=False) + 1e-8).sqrt().mean([1, 2, 3])  # [N / group]
        y = y.view(-1, 1, 1, 1).repeat(group, 1, h, w).to(x.dtype)
        return torch.cat([x, y], 1)


class ResidualDiscriminatorBlock(nn.Module):
    """y = conv3x3 (in->in) -> act -> conv3x3 (in->out) -> act -> bilinear down; skip = down -> conv1x1 (no bias);
    out = (y + skip) / sqrt(2) (StyleGAN2's residual D)."""

    def __init__(self, in_channels, out_channels, equalized: bool, dtype=torch.float32):
        super().__init__()
        self.equalized = equalized
        if equalized:
            self.conv0, self.conv1 = EqualizedConvolution(in_channels, in_channels, 3), EqualizedConvolution(in_channels, out_channels, 3)
            self.act0 = self.act1 = None
            self.skip = EqualizedConvolution(in_channels, out_channels, 1, bias=False)
        else:
            self.conv0 = Convolution(in_channels, in_channels, 3, gain=LEAKY_GAIN)
            self.act0 = BiasedActivation(in_channels)
            self.conv1 = Convolution(in_channels, out_channels, 3, gain=LEAKY_GAIN)
            self.act1 = BiasedActivation(out_channels)
            self.skip = Convolution(in_channels, out_channels, 1)
        self.downsample = Downsample()
        self.dtype = dtype

    @property
    def fold_exception(self):
        """Why a D step cannot fold through this block (networks/operators.py), or None."""
        if self.dtype != torch.float32:
            return f"runs in {self.dtype}: the skipped adversarial backward would have been rounded through the format"
        return None

    def _act(self, x, act):
        return _lrelu(x) if act is None else act(x)

    def forward(self, x):
        x = enter_precision(x, self.dtype)
        skip = self.skip(self.downsample(x))
        y = self._act(self.conv1(self._act(self.conv0(x), self.act0)), self.act1)
        return enter_precision((self.downsample(y) + skip) * math.sqrt(0.5), self.dtype)


class ResidualDiscriminator(nn.Module):
    """images [N, 3, R, R] (+ labels) -> logits [N]: fromRGB (1x1) -> residual blocks R..8 -> [mbstd] ->
    conv3x3 -> act -> FC (C*16 -> C) -> act -> FC (C -> 1, or -> C for the projection with embed(label))."""

    def __init__(self, channels, equalized: bool, mbstd_group=0, num_classes=0, low_precision_stages=0, dtype=torch.float32):
        super().__init__()
        dtypes = _stage_dtypes(len(channels), low_precision_stages, dtype)
        top, last = channels[0], channels[-1]
        if equalized:
            self.from_rgb, self.from_rgb_act = EqualizedConvolution(3, top, 1), None
        else:
            self.from_rgb, self.from_rgb_act = Convolution(3, top, 1, gain=LEAKY_GAIN), BiasedActivation(top)
        self.blocks = nn.ModuleList(
            ResidualDiscriminatorBlock(a, b, equalized, dtypes[index]) for index, (a, b) in enumerate(zip(channels[:-1], channels[1:]))
        )
        self.mbstd = MinibatchStddev(mbstd_group) if mbstd_group else nn.Identity()
        extra = 1 if mbstd_group else 0
        out_features = last if num_classes else 1
        if equalized:
            self.conv = EqualizedConvolution(last + extra, last, 3)
            self.fc, self.out = EqualizedLinear(last * 16, last), EqualizedLinear(last, out_features)
            self.conv_act = self.fc_act = None
            self.embedding = EqualizedLinear(num_classes, out_features, bias=False) if num_classes else None
        else:
            self.conv, self.conv_act = Convolution(last + extra, last, 3, gain=LEAKY_GAIN), BiasedActivation(last)
            self.fc, self.fc_act = Linear(last * 16, last, gain=LEAKY_GAIN), BiasedActivation(last)
            self.out = Linear(last, out_features, bias=True)
            self.embedding = Linear(num_classes, out_features) if num_classes else None
            if self.embedding is not None:
                self.embedding.fold_exception = PROJECTION_OFF_THE_IMAGE_PATH
        self.num_classes, self.first_dtype = num_classes, dtypes[0]

    @staticmethod
    def _act(x, act):
        return _lrelu(x) if act is None else act(x)

    def forward(self, x, labels=None):
        x = enter_precision(x.float(), self.first_dtype)
        x = self._act(self.from_rgb(x), self.from_rgb_act)
        for block in self.blocks:
            x = block(x)
        x = self.mbstd(x.float())
        x = self._act(self.conv(x), self.conv_act)
        x = self.out(self._act(self.fc(x.flatten(1)), self.fc_act))
        if self.embedding is not None:
            cmap = self.embedding(F.one_hot(labels, self.num_classes).float())
            x = (x * cmap).sum(1, keepdim=True) / math.sqrt(cmap.shape[1])
        return x.squeeze(1)
